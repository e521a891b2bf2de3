// Xen Orchestra downloads disks with undici 6 (VDI_exportContent →
// GET /export_raw_vdi). undici 6.29.1 dies on an assertion no caller can
// catch when the server's end of stream reaches it while a response body
// with a length is still being read, so a server that closes right after
// the last byte can kill XO's whole process. This file fails if the node
// process dies: 20 downloads per format, each read slowly.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'

import { CancelToken } from 'promise-toolbox'
import { Agent, request } from 'undici'

import { startServer, makeClient, closeClient } from './helpers.mjs'

const MiB = 1 << 20
const SIZE = 8 * MiB
const ROUNDS = 20

describe('undici 6 and /export_raw_vdi', () => {
  let server
  let xapi
  let vdi
  const agent = new Agent()

  before(async () => {
    server = await startServer()
    xapi = makeClient(server.url, 'json-rpc')
    await xapi.connect()
    const [pool] = await xapi.call('pool.get_all')
    const sr = await xapi.call('pool.get_default_SR', pool)
    vdi = await xapi.call('VDI.create', {
      SR: sr,
      name_label: 'undici disk',
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
    const data = Buffer.alloc(SIZE, 'undici! ')
    await xapi.putResource(CancelToken.none, data, '/import_raw_vdi/', { query: { vdi, format: 'raw' }, task: true })
  })

  after(async () => {
    await agent.close()
    await closeClient(xapi)
    await server.stop()
  })

  // XO's client sends RPCs and transfers through one pool: an export may
  // follow a JSON-RPC call on the same keep-alive connection.
  it(`survives ${ROUNDS / 2} exports that follow an RPC on the same connection`, async () => {
    for (let i = 0; i < ROUNDS / 2; i++) {
      const rpc = await request(`${server.url}/jsonrpc`, {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', method: 'pool.get_all', params: [xapi.sessionId], id: i }),
      })
      assert.equal(rpc.statusCode, 200)
      await rpc.body.text()
      const url = `${server.url}/export_raw_vdi/?session_id=${encodeURIComponent(xapi.sessionId)}&vdi=${encodeURIComponent(vdi)}&format=raw`
      const res = await request(url, { dispatcher: agent })
      let got = 0
      for await (const chunk of res.body) {
        got += chunk.length
        await sleep(1)
      }
      assert.equal(got, SIZE)
    }
  })

  for (const format of ['raw', 'vhd', 'qcow2']) {
    it(`survives ${ROUNDS} slowly read ${format} exports`, async () => {
      for (let i = 0; i < ROUNDS; i++) {
        const url = `${server.url}/export_raw_vdi/?session_id=${encodeURIComponent(xapi.sessionId)}&vdi=${encodeURIComponent(vdi)}&format=${format}`
        const res = await request(url, { dispatcher: agent, method: 'GET' })
        assert.equal(res.statusCode, 200)
        const length = Number(res.headers['content-length'])
        let got = 0
        let first
        for await (const chunk of res.body) {
          first ??= chunk.subarray(0, 8)
          got += chunk.length
          // A slow consumer: undici pauses its parser meanwhile.
          await sleep(1)
        }
        assert.equal(got, length, `round ${i}: the whole body came`)
        if (format === 'raw') assert.equal(got, SIZE)
        if (format === 'vhd') assert.equal(first.toString('latin1'), 'conectix')
        if (format === 'qcow2') assert.equal(first.subarray(0, 4).toString('latin1'), 'QFI\xfb')
      }
    })
  }
})
