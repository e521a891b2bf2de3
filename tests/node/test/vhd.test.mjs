// VHDs as Xen Orchestra writes them (vhd-lib, creator `xo  `), imported
// through /import_raw_vdi?format=vhd as XO's VDI_importContent sends them.
// vhd-lib rounds the footer's size up to the CHS geometry (a 32 MiB disk
// says 33,562,624 bytes), so an importer that trusts the geometry, or that
// insists the footer fit the VDI exactly, fails every XO restore. Broken
// images (cut short, a block table pointing past the end) are refused with
// VDI_IO_ERROR saying which, and leave the VDI as it was.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'

import { CancelToken } from 'promise-toolbox'
import { createReadableSparseStream } from 'vhd-lib'

import { startServer, makeClient, closeClient } from './helpers.mjs'

const MiB = 1 << 20
const SIZE = 32 * MiB
const FRAGMENT = 64 * 1024

// vhd-lib's streams come from an older stream library that is not async
// iterable, so read through events.
function readAll(stream) {
  return new Promise((resolve, reject) => {
    const parts = []
    stream.on('data', chunk => parts.push(chunk))
    stream.on('error', reject)
    stream.on('end', () => resolve(Buffer.concat(parts)))
  })
}

// The expected disk and an XO-made dynamic VHD of it.
async function xoVhd() {
  const disk = Buffer.alloc(SIZE)
  const addresses = [0, 5, 100, SIZE / FRAGMENT - 1]
  const fragments = addresses.map((a, i) => {
    const data = Buffer.alloc(FRAGMENT, `fragment ${i} `)
    data.copy(disk, a * FRAGMENT)
    return { logicalAddressBytes: a * FRAGMENT, data }
  })
  async function* iterate() {
    yield* fragments
  }
  const stream = await createReadableSparseStream(SIZE, FRAGMENT, addresses, iterate())
  return { disk, vhd: await readAll(stream) }
}

describe('VHD import (sized from the footer)', () => {
  let server
  let xapi
  let sr

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
  const raw = async vdi =>
    readAll((await xapi.getResource(CancelToken.none, '/export_raw_vdi/', { query: { vdi, format: 'raw' } })).body)

  before(async () => {
    server = await startServer()
    xapi = makeClient(server.url, 'json-rpc')
    await xapi.connect()
    const [pool] = await xapi.call('pool.get_all')
    sr = await xapi.call('pool.get_default_SR', pool)
  })

  after(async () => {
    await closeClient(xapi)
    await server.stop()
  })

  it('imports a 32 MiB disk written by vhd-lib (creator `xo  `, geometry larger than the disk)', async () => {
    const { disk, vhd } = await xoVhd()
    assert.equal(vhd.subarray(28, 32).toString('latin1'), 'xo  ', 'the creator is XO')
    assert.ok(Number(vhd.readBigUInt64BE(48)) > SIZE, "vhd-lib's footer size is the geometry's, above the disk's")
    const vdi = await newVdi('from xo')
    assert.equal(await put(vdi, vhd, 'vhd'), vdi)
    assert.ok((await raw(vdi)).equals(disk), 'the VDI holds exactly the disk the VHD describes')
  })

  it('refuses a truncated VHD and a block table pointing past the end, writing nothing', async () => {
    const { vhd } = await xoVhd()
    const vdi = await newVdi('kept')
    const before = Buffer.alloc(SIZE, 'untouched ')
    await put(vdi, before, 'raw')

    const truncated = vhd.subarray(0, vhd.length - 3 * MiB)
    await assert.rejects(put(vdi, truncated, 'vhd'), e => {
      assert.equal(e.code, 'VDI_IO_ERROR')
      assert.match(String(e.params), /truncated/)
      return true
    })

    const badBat = Buffer.from(vhd)
    const table = Number(badBat.readBigUInt64BE(512 + 16))
    badBat.writeUInt32BE(0x00f00000, table) // block 0 at 7.5 GiB
    // Keep the dynamic header's checksum right: only the table is wrong.
    await assert.rejects(put(vdi, badBat, 'vhd'), e => {
      assert.equal(e.code, 'VDI_IO_ERROR')
      assert.match(String(e.params), /block table entry 0 points past the end/)
      return true
    })

    const badSum = Buffer.from(vhd)
    badSum[48] ^= 1
    await assert.rejects(put(vdi, badSum, 'vhd'), e => {
      assert.equal(e.code, 'VDI_IO_ERROR')
      assert.match(String(e.params), /checksum/)
      return true
    })
    assert.ok((await raw(vdi)).equals(before), 'the VDI kept its data')
  })
})
