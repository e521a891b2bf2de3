// VM consoles over WebSocket, the way Xen Orchestra's console proxy reaches
// them: the npm `ws` client opens console.location with the protocol turned
// into ws(s):, asks for the `binary` subprotocol and sends the session in a
// cookie; RFB then travels as binary messages both ways.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'

import WebSocket from 'ws'

import { startServer, makeClient, closeClient, withTimeout, freePort } from './helpers.mjs'

const TEMPLATE = 'Debian Etch 4.0'

// Reads a WebSocket's binary messages as one byte stream.
function byteReader(ws) {
  let buf = Buffer.alloc(0)
  let wake = null
  let closed = false
  ws.on('message', (data, isBinary) => {
    assert.equal(isBinary, true, 'console bytes come as binary messages')
    buf = Buffer.concat([buf, data])
    if (wake) wake()
  })
  ws.on('close', () => {
    closed = true
    if (wake) wake()
  })
  return async n => {
    while (buf.length < n) {
      if (closed) throw new Error(`the console closed after ${buf.length} of ${n} bytes`)
      await new Promise(resolve => (wake = resolve))
      wake = null
    }
    const out = buf.subarray(0, n)
    buf = buf.subarray(n)
    return out
  }
}

function opened(ws) {
  return new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
  })
}

describe('WebSocket console', () => {
  let server
  let xapi
  let vm
  let url

  before(async () => {
    server = await startServer()
    xapi = makeClient(server.url, 'json-rpc')
    await xapi.connect()
    const [template] = await xapi.call('VM.get_by_name_label', TEMPLATE)
    vm = await xapi.call('VM.clone', template, 'ws console')
    await xapi.call('VM.provision', vm)
    await xapi.call('VM.start', vm, false, false)
    const [con] = await xapi.call('VM.get_consoles', vm)
    const location = await xapi.call('console.get_location', con)
    // As XO does: the location's path and query on this server, ws: scheme.
    const u = new URL(location)
    url = `ws://127.0.0.1:${server.port}${u.pathname}${u.search}`
  })

  after(async () => {
    await closeClient(xapi)
    await server.stop()
  })

  it('speaks RFB in binary messages under the binary subprotocol', async () => {
    const ws = new WebSocket(url, ['binary'], { headers: { cookie: `session_id=${xapi.sessionId}` } })
    const read = byteReader(ws)
    await withTimeout(opened(ws), 5e3, 'WebSocket open')
    assert.equal(ws.protocol, 'binary')
    assert.equal((await read(12)).toString(), 'RFB 003.008\n')
    ws.send(Buffer.from('RFB 003.008\n'))
    assert.deepEqual([...(await read(2))], [1, 1]) // one security type: None
    ws.send(Buffer.from([1]))
    assert.equal((await read(4)).readUInt32BE(0), 0) // SecurityResult OK
    ws.send(Buffer.from([1])) // ClientInit, shared
    const init = await read(24)
    assert.equal(init.readUInt16BE(0), 640)
    assert.equal(init.readUInt16BE(2), 480)
    const name = await read(init.readUInt32BE(20))
    assert.equal(name.toString(), 'ws console')
    // A full update request for a small area comes back as Raw pixels.
    const req = Buffer.alloc(10)
    req.writeUInt8(3, 0)
    req.writeUInt16BE(8, 6)
    req.writeUInt16BE(4, 8)
    ws.send(req)
    const upd = await read(4 + 12)
    assert.equal(upd.readUInt8(0), 0)
    assert.equal(upd.readUInt16BE(2), 1)
    assert.equal(upd.readInt32BE(4 + 8), 0) // Raw encoding
    assert.equal((await read(8 * 4 * 4)).length, 128)
    ws.close()
  })

  it('works over TLS (wss:), as XO connects', async () => {
    const port = await freePort()
    const tls = await startServer({ extraArgs: ['--https', `127.0.0.1:${port}`] })
    const x = makeClient(tls.url, 'json-rpc')
    try {
      await x.connect()
      const [template] = await x.call('VM.get_by_name_label', TEMPLATE)
      const v = await x.call('VM.clone', template, 'tls console')
      await x.call('VM.provision', v)
      await x.call('VM.start', v, false, false)
      const [con] = await x.call('VM.get_consoles', v)
      const u = new URL(await x.call('console.get_location', con))
      const ws = new WebSocket(`wss://127.0.0.1:${port}${u.pathname}${u.search}`, ['binary'], {
        rejectUnauthorized: false,
        headers: { cookie: `session_id=${x.sessionId}` },
      })
      const read = byteReader(ws)
      await withTimeout(opened(ws), 5e3, 'WebSocket open')
      assert.equal((await read(12)).toString(), 'RFB 003.008\n')
      ws.close()
    } finally {
      await closeClient(x)
      await tls.stop()
    }
  })

  it('refuses a missing session with 401 and an unknown console with 404', async () => {
    const noSession = new WebSocket(url, ['binary'])
    await assert.rejects(opened(noSession), /HTTP 401/)
    const other = url.replace(/uuid=[^&]*/, 'uuid=00000000-0000-0000-0000-000000000000')
    const unknown = new WebSocket(other, ['binary'], { headers: { cookie: `session_id=${xapi.sessionId}` } })
    await assert.rejects(opened(unknown), /HTTP 404/)
  })

  it('ends the console when the VM shuts down', async () => {
    const ws = new WebSocket(url, ['binary'], { headers: { cookie: `session_id=${xapi.sessionId}` } })
    const read = byteReader(ws)
    await withTimeout(opened(ws), 5e3, 'WebSocket open')
    await read(12)
    const closed = new Promise(resolve => ws.once('close', resolve))
    await xapi.call('VM.hard_shutdown', vm)
    await withTimeout(closed, 5e3, 'console closed after shutdown')
  })
})
