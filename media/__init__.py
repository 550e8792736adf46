"""Pure media operations: paths in, dataclasses out, a progress callback. No database,
Redis, HTTP or storage client. Every ffmpeg/ffprobe call on member media goes through
`media.run` with protocol and demuxer whitelists and a wall-clock timeout."""
