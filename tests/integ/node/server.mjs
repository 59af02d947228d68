// server.mjs — starts and stops a real `hone serve` (HONE_BIN) on a free
// loopback port with its own data directory, for the SDK tests.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const SHARED = process.env.HONE_SHARED || path.resolve(import.meta.dirname, '../../../../shared');
export const ANIMAL = path.join(SHARED, 'data/animal');

export function tempDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `hone-${name}-`));
}

// Resolves to {proc, port, baseURL, stop(), kill9()} once the server prints its address.
export function startServer({ data, env = {}, args = [] } = {}) {
  const bin = process.env.HONE_BIN;
  if (!bin) throw new Error('HONE_BIN is not set (the path of the hone binary)');
  const proc = spawn(bin, ['serve', '--port', '0', '--data', data, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15000);
    proc.on('exit', (code) => reject(new Error(`server exited (${code}): ${stderr}`)));
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\/v1/);
      if (!m) return;
      clearTimeout(timer);
      const port = Number(m[1]);
      const exited = new Promise((r) => proc.on('exit', r));
      resolve({
        proc, port, baseURL: `http://127.0.0.1:${port}/v1`,
        stderr: () => stderr,
        stop: async () => { proc.kill('SIGTERM'); await exited; },
        kill9: async () => { proc.kill('SIGKILL'); await exited; },
      });
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function readJsonl(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}
