FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core fonts-noto-color-emoji curl procps \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY media ./media
COPY workers ./workers
COPY web ./web
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 kumpul && mkdir -p /data && chown kumpul /data
USER kumpul
ENV KUMPUL_DATA_DIR=/data KUMPUL_HOST=0.0.0.0
EXPOSE 8000
CMD ["kumpul", "web"]
