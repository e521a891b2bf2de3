// A real Xen Orchestra delta (incremental) backup job against xapid, run by
// XO's own job runner, @xen-orchestra/backups 0.74.2, exactly as xo-server
// runs it: runBackupWorker() forks XO's backup worker, which connects with
// XO's Xapi class (@xen-orchestra/xapi 8.10.5), snapshots the VM, exports
// its disk and writes it to a `file://` remote. Run 1 is a full; after some
// blocks of the VM's disk change, run 2 must write a differencing VHD of
// about the changed size (no "fall back to a full"). The chain is then
// restored with XO's ImportVmBackup into the SR as a new VM, which starts
// (simulator), and its disk must read as the source's.
//
// Packages missing from the registry mirror are replaced by small stand-ins
// or the nearest published version (tests/node/package.json `overrides`,
// tests/node/stand-ins/README.md): xen-api 4.7.6 where XO asks ^4.9 (and
// @vates/nbd-client ^5), vhd-lib 4.15.0 for ^4.16.1, xo-common 0.9.0 for
// ^0.11, @xen-orchestra/async-map 0.1.4 for ^0.1.5, xo-remote-parser 0.5.0
// for ^0.10.1. Nothing that talks to xapid is replaced.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, relative } from 'node:path'

import { CancelToken, Disposable } from 'promise-toolbox'
import { getHandler } from '@xen-orchestra/fs'
import { openVhd, Constants } from 'vhd-lib'

import { startServer, makeClient, closeClient, USER, PASSWORD } from './helpers.mjs'
import { runDeltaJob, summarize, failures, listBackups, restoreLatest } from '../lib/xo-backup-job.mjs'

const MiB = 1 << 20
const SIZE = 32 * MiB
const BLOCK = 2 * MiB // a VHD block
const CHANGED_BLOCKS = [4, 7, 9] // one had data, two were empty

function readAll(stream) {
  return new Promise((resolve, reject) => {
    const parts = []
    stream.on('data', chunk => parts.push(chunk))
    stream.on('error', reject)
    stream.on('end', () => resolve(Buffer.concat(parts)))
  })
}

function filesUnder(dir) {
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...filesUnder(path))
    else out.push(path)
  }
  return out
}

describe('Xen Orchestra delta backup job (@xen-orchestra/backups)', () => {
  let server
  let xapi
  let sr
  let srUuid
  let remoteDir
  let vm
  let vmUuid
  let vdi
  const put = (ref, body, format) =>
    xapi.putResource(CancelToken.none, body, '/import_raw_vdi/', { query: { vdi: ref, format }, task: true })
  const get = async query => {
    const res = await xapi.getResource(CancelToken.none, '/export_raw_vdi/', { query, task: true })
    return readAll(res.body)
  }

  const runJob = () => runDeltaJob({ url: server.url, user: USER, password: PASSWORD, vmUuid, remoteDir })

  before(async () => {
    server = await startServer()
    xapi = makeClient(server.url, 'json-rpc')
    await xapi.connect()
    const [pool] = await xapi.call('pool.get_all')
    sr = await xapi.call('pool.get_default_SR', pool)
    srUuid = await xapi.call('SR.get_uuid', sr)
    remoteDir = mkdtempSync(join(tmpdir(), 'xo-backups-remote-'))

    // A halted VM with one 32 MiB disk, half of its blocks written.
    const [template] = await xapi.call('VM.get_by_name_label', 'Debian Etch 4.0')
    vm = await xapi.call('VM.clone', template, 'backed up by XO')
    await xapi.call('VM.set_is_a_template', vm, false)
    vmUuid = await xapi.call('VM.get_uuid', vm)
    vdi = await xapi.call('VDI.create', {
      SR: sr,
      name_label: 'backed up disk',
      name_description: '',
      virtual_size: String(SIZE),
      type: 'user',
      sharable: false,
      read_only: false,
      other_config: {},
      xenstore_data: {},
      sm_config: {},
      tags: [],
    })
    await xapi.call('VBD.create', {
      VM: vm,
      VDI: vdi,
      userdevice: '0',
      bootable: true,
      mode: 'RW',
      type: 'Disk',
      unpluggable: false,
      empty: false,
      other_config: {},
      qos_algorithm_type: '',
      qos_algorithm_params: {},
    })
  })

  after(async () => {
    await closeClient(xapi)
    await server?.stop()
    if (remoteDir) rmSync(remoteDir, { recursive: true, force: true })
  })

  it('run 1 is a full, run 2 sends only the changed blocks, and the chain restores into a VM that starts', async t => {
    const disk = Buffer.alloc(SIZE)
    for (let b = 0; b < SIZE / BLOCK; b += 2) disk.fill(`block ${b} `, b * BLOCK, (b + 1) * BLOCK)
    await put(vdi, disk, 'raw')

    // Run 1: a full backup.
    const log1 = summarize(await runJob())
    assert.deepEqual(failures(log1), [], 'run 1 failed')
    assert.equal(log1.root?.status, 'success')
    assert.deepEqual(log1.named('export').map(task => task.properties.isFull), [true], 'run 1 exports a full')
    const vhds1 = filesUnder(remoteDir).filter(f => f.endsWith('.vhd'))
    assert.equal(vhds1.length, 1, `one disk image after run 1: ${vhds1.map(f => relative(remoteDir, f))}`)

    // Change whole blocks of the VM's disk.
    const changed = Buffer.from(disk)
    for (const b of CHANGED_BLOCKS) changed.fill(`changed ${b} `, b * BLOCK, (b + 1) * BLOCK)
    await put(vdi, changed, 'raw')

    // Run 2: a delta of those blocks.
    const log2 = summarize(await runJob())
    assert.deepEqual(failures(log2), [], 'run 2 failed')
    assert.equal(log2.root?.status, 'success')
    assert.deepEqual(
      log2.warnings.filter(w => /fall back to a full/.test(w)),
      [],
      'no "fall back to a full" in the job log'
    )
    assert.deepEqual(log2.named('export').map(task => task.properties.isFull), [false], 'run 2 exports a delta')
    const vhds2 = filesUnder(remoteDir).filter(f => f.endsWith('.vhd') && !vhds1.includes(f))
    assert.equal(vhds2.length, 1, 'one new disk image after run 2')
    const fullSize = statSync(vhds1[0]).size
    const deltaSize = statSync(vhds2[0]).size
    const dataSize = CHANGED_BLOCKS.length * (512 + BLOCK) // each block: its sector bitmap and data
    assert.ok(
      deltaSize >= dataSize && deltaSize < dataSize + 64 * 1024,
      `run 2 wrote ${deltaSize} bytes for ${CHANGED_BLOCKS.length} changed blocks (full: ${fullSize})`
    )
    const transferred = log2.named('transfer').map(task => task.result?.size)
    t.diagnostic(`full: ${fullSize} bytes; delta: ${deltaSize} bytes; transfer task sizes: ${transferred}`)
    assert.ok(
      transferred.length > 0 && transferred.every(size => size <= dataSize + 64 * 1024),
      `the transfer task of run 2 reports ${transferred} bytes`
    )

    const handler = getHandler({ url: `file://${remoteDir}` })
    await handler.sync()
    try {
      await Disposable.use(openVhd(handler, relative(remoteDir, vhds1[0])), async vhd => {
        assert.equal(vhd.footer.diskType, Constants.DISK_TYPES.DYNAMIC)
      })
      await Disposable.use(openVhd(handler, relative(remoteDir, vhds2[0])), async vhd => {
        assert.equal(vhd.footer.diskType, Constants.DISK_TYPES.DIFFERENCING, 'run 2 is a delta, not a full')
        assert.equal(vhd.header.parentUnicodeName, basename(vhds1[0]), 'the delta names the full as its parent')
        await vhd.readBlockAllocationTable()
        const present = []
        for (let b = 0; b < SIZE / BLOCK; b++) if (vhd.containsBlock(b)) present.push(b)
        assert.deepEqual(present, CHANGED_BLOCKS)
      })

      // Restore the latest backup (the delta over the full) as xo-server's
      // backupNg.importVmBackup does, into the SR as a new VM.
      assert.equal((await listBackups(remoteDir, vmUuid)).length, 2)
      const { restored, latest, log: restoreLog } = await restoreLatest({
        url: server.url,
        user: USER,
        password: PASSWORD,
        vmUuid,
        remoteDir,
        srUuid,
      })
      assert.equal(latest.mode, 'delta')
      assert.deepEqual(failures(restoreLog), [], 'the restore failed')
      assert.equal(restoreLog.root?.status, 'success')
      assert.ok(restored?.id, 'the restore names the new VM')

      const newVm = await xapi.call('VM.get_by_uuid', restored.id)
      assert.notEqual(newVm, vm)
      const vbds = await xapi.call('VM.get_VBDs', newVm)
      const disks = []
      for (const vbd of vbds) {
        if ((await xapi.call('VBD.get_type', vbd)) === 'Disk') disks.push(await xapi.call('VBD.get_VDI', vbd))
      }
      assert.equal(disks.length, 1)
      assert.equal(await xapi.call('VDI.get_SR', disks[0]), sr)
      const content = await get({ vdi: disks[0], format: 'raw' })
      assert.ok(content.equals(changed), 'the restored disk reads as the source disk after run 2')

      await xapi.call('VM.start', newVm, false, false)
      assert.equal(await xapi.call('VM.get_power_state', newVm), 'Running')
      await xapi.call('VM.hard_shutdown', newVm)
    } finally {
      await handler.forget()
    }
  })
})
