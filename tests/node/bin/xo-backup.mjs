// Xen Orchestra's delta backup job and restore, for tests that drive real
// guests from Python (tests/python/test_qemu_io.py). Prints one JSON object.
//
//   node bin/xo-backup.mjs backup  URL USER PASSWORD VM_UUID REMOTE_DIR
//     → { ok, failures, warnings, isFull: [..], transferred: [..] }
//   node bin/xo-backup.mjs restore URL USER PASSWORD VM_UUID REMOTE_DIR SR_UUID
//     → { ok, failures, mode, vm: NEW_VM_UUID }

import { runDeltaJob, summarize, failures, restoreLatest } from '../lib/xo-backup-job.mjs'

const [cmd, url, user, password, vmUuid, remoteDir, srUuid] = process.argv.slice(2)

let out
if (cmd === 'backup') {
  const log = summarize(await runDeltaJob({ url, user, password, vmUuid, remoteDir }))
  out = {
    ok: log.root?.status === 'success',
    failures: failures(log),
    warnings: log.warnings,
    isFull: log.named('export').map(t => t.properties.isFull),
    transferred: log.named('transfer').map(t => t.result?.size),
  }
} else if (cmd === 'restore') {
  const { restored, latest, log } = await restoreLatest({ url, user, password, vmUuid, remoteDir, srUuid })
  out = { ok: log.root?.status === 'success', failures: failures(log), mode: latest.mode, vm: restored?.id }
} else {
  console.error(`unknown command ${cmd}: backup or restore`)
  process.exit(2)
}
console.log(JSON.stringify(out))
process.exit(out.ok ? 0 : 1)
