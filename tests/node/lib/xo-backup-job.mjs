// Running a Xen Orchestra delta backup job and restoring from it, as
// xo-server does, with XO's own libraries (@xen-orchestra/backups 0.74.2 on
// @xen-orchestra/xapi 8.10.5): shared by test/xo-backups.test.mjs (the
// simulator) and bin/xo-backup.mjs (driven by tests/python/test_qemu_io.py
// against real guests).

import { getHandler } from '@xen-orchestra/fs'
import { Xapi } from '@xen-orchestra/xapi'
import { runBackupWorker } from '@xen-orchestra/backups/runBackupWorker.mjs'
import { RemoteAdapter } from '@xen-orchestra/backups/RemoteAdapter.mjs'
import { ImportVmBackup } from '@xen-orchestra/backups/ImportVmBackup.mjs'
import { Task } from '@vates/task'

// The settings xo-server reads from its config.toml [backups] section.
export const BACKUPS_CONFIG = {
  dirMode: 0o700,
  snapshotNameLabelTpl: '[XO Backup {job.name}] {vm.name_label}',
  listingDebounce: '1 min',
  vhdDirectoryCompression: 'brotli',
  mergeBlockConcurrency: 2,
  writeBlockConcurrency: 16,
  defaultSettings: { reportWhen: 'failure' },
}

// XO's worker logs every step at INFO: keep its warnings and errors only
// (the forked worker inherits the environment).
process.env.LOG_LEVEL ??= 'warn'

const remoteId = 'remote-1'
const xapiId = 'xapi-1'
const scheduleId = 'schedule-1'
const jobId = 'job-delta-1'

// Runs a delta job on one VM as xo-server's backups-ng executor does;
// returns the worker's log events.
export async function runDeltaJob({ url, user, password, vmUuid, remoteDir }) {
  const events = []
  await runBackupWorker(
    {
      config: BACKUPS_CONFIG,
      job: {
        id: jobId,
        type: 'backup',
        mode: 'delta',
        name: 'xapi-rs delta',
        vms: { id: vmUuid },
        remotes: { id: { __or: [remoteId] } },
        srs: { id: { __or: [] } },
        settings: { '': { fullInterval: 0 }, [scheduleId]: { exportRetention: 3 } },
      },
      jobData: { jobId, jobName: 'xapi-rs delta', scheduleId, reportWhen: 'failure' },
      recordToXapi: { [vmUuid]: xapiId },
      remotes: { [remoteId]: { id: remoteId, name: 'local', url: `file://${remoteDir}` } },
      remoteOptions: {},
      resourceCacheDelay: 0,
      schedule: { id: scheduleId },
      xapiOptions: {},
      xapis: {
        [xapiId]: { url, allowUnauthorized: true, credentials: { username: user, password } },
      },
    },
    event => events.push(event)
  )
  return events
}

// The task tree's facts a test needs: the root's end, the warnings, and
// every task's start properties and end result by name.
export function summarize(events) {
  const started = new Map()
  const tasks = []
  for (const e of events) {
    if (e.type === 'start') {
      const t = { id: e.id, parentId: e.parentId, properties: e.properties ?? {}, warnings: [] }
      started.set(e.id, t)
      tasks.push(t)
    } else if (e.type === 'warning') started.get(e.id)?.warnings.push(e.message)
    else if (e.type === 'end') Object.assign(started.get(e.id) ?? {}, { status: e.status, result: e.result })
  }
  const root = tasks.find(t => t.parentId === undefined)
  return {
    root,
    tasks,
    warnings: tasks.flatMap(t => t.warnings),
    named: name => tasks.filter(t => t.properties.name === name),
  }
}

export function failures(log) {
  return log.tasks
    .filter(t => t.status === 'failure')
    .map(t => `${t.properties.name}: ${t.result?.message ?? JSON.stringify(t.result)}`)
}

// The backups of one VM on a `file://` remote, oldest first.
export async function listBackups(remoteDir, vmUuid) {
  const handler = getHandler({ url: `file://${remoteDir}` })
  await handler.sync()
  try {
    const adapter = new RemoteAdapter(handler, { dirMode: BACKUPS_CONFIG.dirMode })
    return (await adapter.listVmBackups(vmUuid)).sort((a, b) => a.timestamp - b.timestamp)
  } finally {
    await handler.forget()
  }
}

// Restores the latest backup of a VM into an SR as xo-server's
// backupNg.importVmBackup does; returns { restored, log } (restored.id is
// the new VM's uuid).
export async function restoreLatest({ url, user, password, vmUuid, remoteDir, srUuid }) {
  const handler = getHandler({ url: `file://${remoteDir}` })
  await handler.sync()
  try {
    const adapter = new RemoteAdapter(handler, { dirMode: BACKUPS_CONFIG.dirMode })
    const backups = await adapter.listVmBackups(vmUuid)
    const latest = backups.reduce((a, b) => (a.timestamp > b.timestamp ? a : b))
    const xapi = new Xapi({ url, allowUnauthorized: true, auth: { user, password } })
    await xapi.connect()
    const events = []
    let restored
    try {
      await xapi.objectsFetched
      restored = await Task.run({ properties: { name: 'restore' }, onProgress: e => events.push(e) }, () =>
        new ImportVmBackup({ adapter, metadata: latest, srUuid, xapi }).run()
      )
    } finally {
      await xapi.disconnect()
    }
    return { restored, latest, log: summarize(events) }
  } finally {
    await handler.forget()
  }
}
