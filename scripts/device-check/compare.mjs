/**
 * Trains every spec of expected.json with the bundle (`train --backend webgpu --json`) and compares
 * the results with the CPU reference's, made on the development machine. Plain Node, no packages:
 * it runs beside the unpacked bundle on the device machine (see ../device-check.sh).
 *
 *   node compare.mjs BUNDLE_MJS OUT_DIR
 * Writes OUT_DIR/digests.json and OUT_DIR/train/<name>.{json,log}; exit 1 on any mismatch or failure.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const [bundle, out] = process.argv.slice(2);
if (!bundle || !out) throw new Error('usage: node compare.mjs BUNDLE_MJS OUT_DIR');
const FIELDS = ['taskId', 'weightsHash', 'valCorrect', 'digest'];
const TIMEOUT_MS = Number(process.env.DEVICE_CHECK_TRAIN_TIMEOUT_MS ?? 120000);

const only = new RegExp(process.env.DEVICE_CHECK_ONLY ?? '');
const expected = JSON.parse(readFileSync(join(HERE, 'expected.json'), 'utf8')).filter((e) =>
  only.test(e.file),
);
mkdirSync(join(out, 'train'), { recursive: true });
const rows = [];
for (const want of expected) {
  const name = basename(want.file, '.json');
  const started = Date.now();
  const run = spawnSync(
    process.execPath,
    [bundle, 'train', '--spec', join(HERE, want.file), '--backend', 'webgpu', '--json'],
    { encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: 1 << 26 },
  );
  writeFileSync(join(out, 'train', `${name}.log`), run.stderr ?? '');
  let got = null;
  try {
    got = JSON.parse(run.stdout);
    writeFileSync(join(out, 'train', `${name}.json`), run.stdout);
  } catch {}
  const mismatched = got ? FIELDS.filter((f) => got[f] !== want[f]) : FIELDS;
  const status =
    got === null
      ? `FAILED (exit ${run.status ?? run.signal})`
      : mismatched.length
        ? 'DIFFERENT'
        : 'identical';
  rows.push({
    name,
    status,
    ms: Date.now() - started,
    expected: want.digest,
    got: got?.digest ?? null,
    mismatched,
  });
  console.log(
    `${status.padEnd(18)} ${name.padEnd(20)} ${want.digest.slice(0, 18)}… ${Date.now() - started} ms`,
  );
}
writeFileSync(join(out, 'digests.json'), `${JSON.stringify(rows, null, 2)}\n`);
const identical = rows.filter((r) => r.status === 'identical').length;
console.log(`digests: ${identical}/${rows.length} identical to the CPU reference`);
process.exitCode = identical === rows.length ? 0 : 1;
