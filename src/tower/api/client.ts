/**
 * The tower's API as the operator's commands call it (`tacmesh services`, `tacmesh qos`):
 * HTTPS trusting only the given CA, a token from an owner-only file or TACMESH_TOKEN.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { Command } from 'commander';
import { readSecretFile } from '../../shared/secret-file.js';

export interface ApiClientOptions {
  api: string;
  ca: string;
  tokenFile?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** The options every command that calls the API takes. */
export function withApiOptions(cmd: Command): Command {
  return cmd
    .option('--api <url>', "the tower's API", 'https://127.0.0.1:8443')
    .option('--ca <file>', 'the CA the tower certificate is checked against', '/etc/tacmesh/pki/ca.crt')
    .option(
      '--token-file <file>',
      'a file holding the API token, readable by its owner only (else $TACMESH_TOKEN)',
    );
}

/** A subcommand of `parent` that reads a file (`-f`) and calls the API. */
export function fileCommand(parent: Command, name: string, description: string): Command {
  return withApiOptions(
    parent.command(name).description(description).requiredOption('-f, --file <file>', 'the YAML file'),
  );
}

export class ApiClient {
  private readonly url: URL;
  private readonly ca: Buffer;
  private readonly token: string;

  constructor(opts: ApiClientOptions) {
    this.url = new URL(opts.api);
    if (this.url.protocol !== 'https:') throw new Error(`--api ${opts.api}: the tower's API is https only`);
    try {
      this.ca = readFileSync(opts.ca);
    } catch (err) {
      throw new Error(`--ca ${opts.ca}: ${(err as Error).message}`);
    }
    const token = opts.tokenFile
      ? readSecretFile(opts.tokenFile).toString('utf8').trim()
      : process.env.TACMESH_TOKEN;
    if (!token) throw new Error('no API token: give --token-file <file> or set TACMESH_TOKEN');
    this.token = token;
  }

  /** The JSON answer; an ApiError with the tower's `error` for any status but 2xx. */
  call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.url.hostname,
          port: this.url.port || 443,
          path: `/api/v1/${path}`,
          method,
          ca: this.ca,
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d.toString();
          });
          res.on('end', () => {
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = text;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(json as T);
            else {
              const message = (json as { error?: string } | undefined)?.error ?? `HTTP ${status}`;
              reject(new ApiError(status, `the tower answered ${status}: ${message}`, json));
            }
          });
        },
      );
      req.on('error', (err) =>
        reject(new Error(`cannot reach the tower at ${this.url.origin}: ${err.message}`)),
      );
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }
}
