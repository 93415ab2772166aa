/**
 * Request bodies read straight from Node's stream, under a size limit.
 *
 * Served by @hono/node-server, a route that validates its JSON body makes Hono build a WHATWG
 * Request with a web stream for it; for the coordinator's small, frequent bodies (a lease request,
 * a result) that costs more CPU than the route's own work. This middleware reads the bytes from
 * the Node request (`c.env.incoming`), refuses more than `maxSize` bytes with 413 (declared or
 * streamed), and leaves the text in Hono's body cache, where `c.req.json()` and the zod validator
 * read it. Without a Node request (tests calling `app.request`, other runtimes) it falls back to
 * Hono's `bodyLimit`, which behaves the same.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';

const tooLarge = (c: Context, maxSize: number) => c.json({ error: `body larger than ${maxSize} bytes` }, 413);

/** `maxSize` may depend on the request (a state upload is bounded by the open requests' size). */
export function limitedBody(maxSizeOf: (c: Context) => number | Promise<number>): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const maxSize = await maxSizeOf(c);
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    if (!incoming || typeof incoming.on !== 'function')
      return bodyLimit({ maxSize, onError: (c) => tooLarge(c, maxSize) })(c, next);
    if (Number(c.req.header('content-length') ?? 0) > maxSize) return tooLarge(c, maxSize);
    const text = await readText(incoming, maxSize);
    if (text === undefined) return tooLarge(c, maxSize);
    (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve(text);
    return next();
  };
}

/** The whole body as UTF-8, or undefined once it passes `maxSize` bytes. */
function readText(incoming: IncomingMessage, maxSize: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxSize) {
        incoming.off('data', onData);
        incoming.resume(); // drain the rest so the connection stays usable for the 413
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    incoming.on('data', onData);
    incoming.once('end', () => resolve(size > maxSize ? undefined : Buffer.concat(chunks).toString('utf8')));
    incoming.once('error', reject);
  });
}
