// VM export and import the way Xen Orchestra moves them: the npm client's
// getResource('/export/') and putResource(stream, '/import/') (trailing
// slashes, as XO writes the paths), each under a task the client watches.
// putResource first sends an empty probe request, then, for a stream of
// unknown length, a 1 PiB Content-Length and closes once the data is sent.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'

import { CancelToken } from 'promise-toolbox'

import { startServer, makeClient, closeClient, withTimeout } from './helpers.mjs'

const TEMPLATE = 'Debian Etch 4.0'
const MiB = 1 << 20

async function readAll(body) {
  const parts = []
  for await (const chunk of body) parts.push(chunk)
  return Buffer.concat(parts)
}

describe('XO-style export and import', () => {
  let server
  let xapi
  let vm
  let sr
  let vdi

  before(async () => {
    server = await startServer()
    xapi = makeClient(server.url, 'json-rpc')
    await xapi.connect()
    const [template] = await xapi.call('VM.get_by_name_label', TEMPLATE)
    vm = await xapi.call('VM.clone', template, 'xo export')
    await xapi.call('VM.set_is_a_template', vm, false)
    const [pool] = await xapi.call('pool.get_all')
    sr = await xapi.call('pool.get_default_SR', pool)
    vdi = await xapi.call('VDI.create', {
      SR: sr,
      name_label: 'xo disk',
      name_description: '',
      virtual_size: String(4 * MiB),
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
    // Some data in the disk, through the client's own upload path.
    const data = Buffer.alloc(2 * MiB, 'xapi-rs ')
    const result = await xapi.putResource(CancelToken.none, data, '/import_raw_vdi/', {
      query: { vdi, format: 'raw' },
      task: true,
    })
    assert.equal(result, vdi, 'the task result is the VDI, as xapi gives it')
  })

  after(async () => {
    await closeClient(xapi)
    await server.stop()
  })

  it('writes a raw stream of unknown length (the client ignores the VDI_IO_ERROR this gives, as with xapi)', async () => {
    const scratch = await xapi.call('VDI.create', {
      SR: sr,
      name_label: 'xo raw upload',
      name_description: '',
      virtual_size: String(2 * MiB),
      type: 'user',
      sharable: false,
      read_only: false,
      other_config: {},
      xenstore_data: {},
      sm_config: {},
      tags: [],
    })
    const data = Buffer.alloc(MiB + 4096, 'raw stream ')
    const stream = Readable.from([data.subarray(0, 4096), data.subarray(4096)])
    await withTimeout(
      xapi.putResource(CancelToken.none, stream, '/import_raw_vdi/', { query: { vdi: scratch, format: 'raw' }, task: true }),
      10e3,
      'raw upload'
    )
    const res = await xapi.getResource(CancelToken.none, '/export_raw_vdi/', { query: { vdi: scratch, format: 'raw' } })
    const disk = await readAll(res.body)
    assert.ok(disk.subarray(0, data.length).equals(data))
    assert.ok(disk.subarray(data.length).equals(Buffer.alloc(2 * MiB - data.length)))
  })

  for (const compression of ['false', 'zstd']) {
    it(`round-trips a VM (use_compression=${compression})`, async () => {
      const res = await withTimeout(
        xapi.getResource(CancelToken.none, '/export/', { query: { ref: vm, use_compression: compression }, task: true }),
        10e3,
        'export'
      )
      const xva = await readAll(res.body)
      await withTimeout(res.task, 10e3, 'export task')
      const magic = compression === 'zstd' ? Buffer.from([0x28, 0xb5, 0x2f, 0xfd]) : Buffer.from('ova.xml')
      assert.ok(xva.subarray(0, magic.length).equals(magic), 'a tar starting with ova.xml, or zstd')
      const before = (await xapi.call('VM.get_all')).length
      // A stream without a length: the client's 1 PiB Content-Length hack.
      const stream = Readable.from([xva.subarray(0, 1000), xva.subarray(1000)])
      const result = await withTimeout(
        xapi.putResource(CancelToken.none, stream, '/import/', { query: { sr_id: sr }, task: true }),
        15e3,
        'import'
      )
      const [newVm] = String(result).match(/OpaqueRef:[0-9a-f-]+/) ?? []
      assert.ok(newVm, `the import task returned a VM ref (${result})`)
      assert.notEqual(newVm, vm)
      // The client's empty probe request made nothing.
      assert.equal((await xapi.call('VM.get_all')).length, before + 1)
      assert.equal(await xapi.call('VM.get_name_label', newVm), 'xo export')
      const vbds = await xapi.call('VM.get_VBDs', newVm)
      const vdis = await Promise.all(vbds.map(b => xapi.call('VBD.get_VDI', b)))
      const raw = await xapi.getResource(CancelToken.none, '/export_raw_vdi/', { query: { vdi: vdis[0], format: 'raw' } })
      const disk = await readAll(raw.body)
      assert.equal(disk.length, 4 * MiB)
      assert.ok(disk.subarray(0, 2 * MiB).equals(Buffer.alloc(2 * MiB, 'xapi-rs ')))
      assert.ok(disk.subarray(2 * MiB).equals(Buffer.alloc(2 * MiB)))
    })
  }
})
