// A small tus 1.0 client (core and creation): what the share page needs of tus-js-client in
// a few kB. A dropped connection is retried with back-off and resumes at the offset the
// server holds (HEAD); a reload resumes too, the upload's URL kept in localStorage under the
// file's fingerprint until the last byte is in.
const TUS = { "Tus-Resumable": "1.0.0" };

/** A refusal from the server (a 4xx other than the ones worth retrying). */
export class TusError extends Error {
  constructor(status, body) {
    super(`tus: HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

const RETRY = new Set([0, 409, 423, 429, 500, 502, 503, 504]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const base64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

function send(method, url, headers, body, onSent) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries({ ...TUS, ...headers })) xhr.setRequestHeader(name, value);
    if (onSent) xhr.upload.onprogress = (event) => onSent(event.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300
      ? resolve(xhr) : reject(new TusError(xhr.status, xhr.responseText)));
    xhr.onerror = () => reject(new TusError(0, ""));
    xhr.send(body);
  });
}

export class Upload {
  /** options: endpoint, metadata, headers, chunkSize, retryDelays, fingerprint,
   *  onProgress(sent, total), onSuccess(), onError(TusError) */
  constructor(file, options) {
    this.file = file;
    this.options = options;
    this.key = `tus:${options.fingerprint}`;
    this.url = null;
    this.running = false;
  }

  /** True when an earlier attempt at this file left an upload to resume. */
  resumable() { return Boolean(localStorage.getItem(this.key)); }

  async start() {
    if (this.running) return;
    this.running = true;
    const { file, options } = this;
    for (let attempt = 0; ; attempt += 1) {
      try {
        this.url = this.url || localStorage.getItem(this.key);
        let offset = this.url ? await this.offset() : null;
        if (offset === null) offset = await this.create();
        while (offset < file.size) {
          const chunk = file.slice(offset, offset + options.chunkSize);
          const sent = offset;
          const xhr = await send("PATCH", this.url, {
            ...options.headers, "Upload-Offset": String(offset),
            "Content-Type": "application/offset+octet-stream",
          }, chunk, (n) => options.onProgress(sent + n, file.size));
          offset = Number(xhr.getResponseHeader("Upload-Offset"));
          attempt = 0; // progress was made: the back-off starts over
        }
        localStorage.removeItem(this.key);
        this.running = false;
        options.onProgress(file.size, file.size);
        options.onSuccess();
        return;
      } catch (error) {
        const delay = options.retryDelays[attempt];
        if (!RETRY.has(error.status) || delay === undefined) {
          if (error.status) localStorage.removeItem(this.key);
          this.running = false;
          options.onError(error);
          return;
        }
        await sleep(delay);
      }
    }
  }

  /** The server's offset of the upload begun earlier, or null when it is gone. */
  async offset() {
    try {
      const xhr = await send("HEAD", this.url, this.options.headers);
      return Number(xhr.getResponseHeader("Upload-Offset"));
    } catch (error) {
      if (error.status === 0 || error.status >= 500) throw error;
      localStorage.removeItem(this.key); // expired or withdrawn: start again
      this.url = null;
      return null;
    }
  }

  async create() {
    const metadata = Object.entries(this.options.metadata)
      .filter(([, value]) => value !== undefined && value !== "")
      .map(([key, value]) => `${key} ${base64(String(value))}`).join(",");
    const xhr = await send("POST", this.options.endpoint, {
      ...this.options.headers, "Upload-Length": String(this.file.size), "Upload-Metadata": metadata,
    });
    this.url = new URL(xhr.getResponseHeader("Location"), window.location.href).href;
    localStorage.setItem(this.key, this.url);
    return 0;
  }
}
