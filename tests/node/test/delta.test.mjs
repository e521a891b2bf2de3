// Incremental (delta) backups as Xen Orchestra makes them, with XO's own
// vhd-lib and @xen-orchestra/fs: a full VHD of a first snapshot, then
// /export_raw_vdi?base=<previous snapshot>&format=vhd for the next one,
// which must be a differencing VHD holding only the changed blocks (XO
// checks the disk type and falls back to a full backup otherwise). The
// files go to a local directory remote, are chained by vhd-lib as XO's
// remote writer does, read back through vhd-lib's synthetic chain, and the
// chain is restored as XO restores one: the full image, then the delta over
// it; the restored disk then boots a (simulated) VM.
//
// XO's own job runner (@xen-orchestra/backups) doing the same is
// xo-backups.test.mjs.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { CancelToken } from 'promise-toolbox'
import { Disposable } from 'promise-toolbox'
import { getSyncedHandler } from '@xen-orchestra/fs'
import { chainVhd, openVhd, VhdSynthetic, Constants } from 'vhd-lib'

import { startServer, makeClient, closeClient } from './helpers.mjs'

const MiB = 1 << 20
const SIZE = 32 * MiB
const BLOCK = 2 * MiB

// Buffers from node streams and from vhd-lib's older stream library alike.
function readAll(stream) {
  return new Promise((resolve, reject) => {
    const parts = []
    stream.on('data', chunk => parts.push(chunk))
    stream.on('error', reject)
    stream.on('end', () => resolve(Buffer.concat(parts)))
  })
}

describe('delta backups with vhd-lib', () => {
  let server
  let xapi
  let sr
  let remoteDir

  const newVdi = name =>
    xapi.call('VDI.create', {
      SR: sr,
      name_label: name,
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
  const put = (vdi, body, format) =>
    xapi.putResource(CancelToken.none, body, '/import_raw_vdi/', { query: { vdi, format }, task: true })
  const get = async query => {
    const res = await xapi.getResource(CancelToken.none, '/export_raw_vdi/', { query, task: true })
    return readAll(res.body)
  }

  before(async () => {
    server = await startServer()
    xapi = makeClient(server.url, 'json-rpc')
    await xapi.connect()
    const [pool] = await xapi.call('pool.get_all')
    sr = await xapi.call('pool.get_default_SR', pool)
    remoteDir = mkdtempSync(join(tmpdir(), 'xo-remote-'))
  })

  after(async () => {
    await closeClient(xapi)
    await server.stop()
    rmSync(remoteDir, { recursive: true, force: true })
  })

  it('sends only the changed blocks as a differencing VHD, which vhd-lib chains and XO restores', async () => {
    const disk = Buffer.alloc(SIZE)
    for (let b = 0; b < SIZE / BLOCK; b += 2) disk.fill(`block ${b} `, b * BLOCK, b * BLOCK + BLOCK / 2)
    const vdi = await newVdi('backed up')
    await put(vdi, disk, 'raw')
    const snap1 = await xapi.call('VDI.snapshot', vdi, {})

    const full = await get({ vdi: snap1, format: 'vhd' })
    writeFileSync(join(remoteDir, 'full.vhd'), full)

    // Change two blocks (one that had data, one that was empty).
    const changed = Buffer.from(disk)
    changed.write('changed since the first backup', 4 * BLOCK + 100)
    changed.write('new data in an empty block', 7 * BLOCK)
    await put(vdi, changed, 'raw')
    const snap2 = await xapi.call('VDI.snapshot', vdi, {})

    const delta = await get({ vdi: snap2, base: snap1, format: 'vhd' })
    writeFileSync(join(remoteDir, 'delta.vhd'), delta)
    assert.equal(delta.length, 512 + 1024 + 512 + 2 * (512 + BLOCK) + 512, 'two blocks and the metadata, nothing more')
    assert.ok(delta.length < full.length / 3, "the full image holds 8 blocks")

    await Disposable.use(getSyncedHandler({ url: `file://${remoteDir}` }), async handler => {
      await Disposable.use(openVhd(handler, 'full.vhd'), async vhd => {
        assert.equal(vhd.footer.diskType, Constants.DISK_TYPES.DYNAMIC)
        assert.equal(vhd.footer.currentSize, SIZE)
      })
      await Disposable.use(openVhd(handler, 'delta.vhd'), async vhd => {
        assert.equal(vhd.footer.diskType, Constants.DISK_TYPES.DIFFERENCING, 'a delta, not a fallback to full')
        await vhd.readBlockAllocationTable()
        const present = []
        for (let b = 0; b < SIZE / BLOCK; b++) if (vhd.containsBlock(b)) present.push(b)
        assert.deepEqual(present, [4, 7])
      })
      // As XO's remote writer: point the delta at its parent, then read the
      // disk back through the chain.
      await chainVhd(handler, 'full.vhd', handler, 'delta.vhd')
      await Disposable.use(VhdSynthetic.fromVhdChain(handler, 'delta.vhd'), async vhd => {
        await vhd.readBlockAllocationTable()
        const content = await readAll(vhd.rawContent())
        assert.ok(content.subarray(0, SIZE).equals(changed), 'the chain reads as the second snapshot')
      })

      // Restore as XO does: the base image into a new VDI, then the delta.
      const restored = await newVdi('restored')
      await put(restored, await handler.readFile('full.vhd'), 'vhd')
      assert.ok((await get({ vdi: restored, format: 'raw' })).equals(disk))
      await put(restored, await handler.readFile('delta.vhd'), 'vhd')
      assert.ok((await get({ vdi: restored, format: 'raw' })).equals(changed), 'the restored chain is the second snapshot')

      // The restored disk boots a VM (the simulator).
      const [template] = await xapi.call('VM.get_by_name_label', 'Debian Etch 4.0')
      const vm = await xapi.call('VM.clone', template, 'restored from a delta chain')
      await xapi.call('VM.set_is_a_template', vm, false)
      await xapi.call('VBD.create', {
        VM: vm,
        VDI: restored,
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
      await xapi.call('VM.start', vm, false, false)
      assert.equal(await xapi.call('VM.get_power_state', vm), 'Running')
      await xapi.call('VM.hard_shutdown', vm)
    })
  })

  it('refuses a base from another chain', async () => {
    const a = await newVdi('a')
    const b = await newVdi('b')
    await assert.rejects(get({ vdi: a, base: b, format: 'vhd' }), e => {
      assert.match(String(e.message ?? e), /VDI_IO_ERROR|500/)
      return true
    })
  })
})
