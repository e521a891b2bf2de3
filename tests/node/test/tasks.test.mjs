// The npm client's callAsync (clients.md §1.2): it sends Async.<method>, waits
// for the task through event.from (never polling), parses task.result as an
// XML-RPC fragment, then calls task.destroy. Failures reject with the XenAPI
// error from task.error_info; cancellation goes through task.cancel.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'

import { Cancel, CancelToken } from 'promise-toolbox'

import {
  startServer,
  makeClient,
  closeClient,
  objectsOfType,
  withTimeout,
  waitFor,
  isRef,
  rpcLog,
} from './helpers.mjs'

const TEMPLATE = 'Debian Etch 4.0'

// Every call of `method` the client made since `from` (an rpcLog index).
const callsOf = (xapi, method, from = 0) => rpcLog(xapi).slice(from).filter(c => c.method === method)

async function taskDestroyed(xapi, taskRef, from) {
  await waitFor(
    () => callsOf(xapi, 'task.destroy', from).some(c => c.args[1] === taskRef && c.end !== undefined),
    5e3,
    `task.destroy(${taskRef})`
  )
  const tasks = await xapi.call('task.get_all')
  assert.equal(tasks.includes(taskRef), false, 'the task is gone after task.destroy')
}

// The task ref returned by the client's Async.<method> call made after `from`.
function asyncTask(xapi, method, from) {
  const calls = callsOf(xapi, `Async.${method}`, from)
  assert.equal(calls.length, 1, `one Async.${method} call`)
  assert.ok(isRef(calls[0].result), `Async.${method} returned a task ref`)
  return calls[0].result
}

describe('callAsync', { concurrency: 2 }, () => {
  for (const transport of ['json-rpc', 'xml-rpc']) {
    describe(`callAsync over ${transport}`, { concurrency: 1 }, () => {
      let server
      let xapi
      let vm

      before(async () => {
        server = await startServer()
        xapi = makeClient(server.url, transport)
        await xapi.connect()
        await withTimeout(xapi.objectsFetched, 15e3, 'objectsFetched')
      })

      after(async () => {
        if (xapi !== undefined) await closeClient(xapi)
        await server?.stop()
      })

      it('VM.clone resolves with the new VM ref (result parsed from <value>OpaqueRef:…</value>)', async () => {
        const [template] = objectsOfType(xapi, 'VM').filter(v => v.is_a_template && v.name_label === TEMPLATE)
        assert.ok(template, 'template in the cache')
        const mark = rpcLog(xapi).length
        const ref = await withTimeout(xapi.callAsync('VM.clone', template.$ref, `clone over ${transport}`), 10e3, 'clone')
        assert.ok(isRef(ref), `a VM ref, got ${JSON.stringify(ref)}`)
        const taskRef = asyncTask(xapi, 'VM.clone', mark)
        const rec = await xapi.call('VM.get_record', ref)
        assert.equal(rec.name_label, `clone over ${transport}`)
        assert.equal(rec.is_a_template, true)
        await taskDestroyed(xapi, taskRef, mark)
        await withTimeout(xapi.callAsync('VM.provision', ref), 10e3, 'provision')
        vm = ref
      })

      it("callAsync('VM.start', ref, false, false) waits through events, resolves '' and destroys the task", async () => {
        const mark = rpcLog(xapi).length
        const result = await withTimeout(xapi.callAsync('VM.start', vm, false, false), 10e3, 'start')
        assert.equal(result, '')
        const taskRef = asyncTask(xapi, 'VM.start', mark)
        assert.equal(await xapi.call('VM.get_power_state', vm), 'Running')
        // It learned of completion from event.from, not by polling the task.
        for (const m of ['task.get_record', 'task.get_status', 'task.get_result']) {
          assert.equal(callsOf(xapi, m, mark).length, 0, `no ${m} polling`)
        }
        assert.ok(callsOf(xapi, 'event.from', mark).length > 0, 'event.from was called')
        await taskDestroyed(xapi, taskRef, mark)
        // The cache saw the VM change too.
        await waitFor(() => xapi.getObjectByRef(vm).power_state === 'Running', 5e3, 'cached power_state Running')
      })

      it('a failing callAsync rejects with the XenAPI error and still destroys the task', async () => {
        const mark = rpcLog(xapi).length
        await assert.rejects(
          withTimeout(xapi.callAsync('VM.start', vm, false, false), 10e3, 'failing start'),
          error => {
            assert.equal(error.code, 'VM_BAD_POWER_STATE')
            assert.deepEqual(error.params, [vm, 'halted', 'running'])
            assert.equal(error.task?.status, 'failure')
            return true
          }
        )
        const taskRef = asyncTask(xapi, 'VM.start', mark)
        await taskDestroyed(xapi, taskRef, mark)
      })

      it("callAsync('VM.clean_shutdown', ref) resolves ''", async () => {
        const mark = rpcLog(xapi).length
        assert.equal(await withTimeout(xapi.callAsync('VM.clean_shutdown', vm), 10e3, 'clean_shutdown'), '')
        assert.equal(await xapi.call('VM.get_power_state', vm), 'Halted')
        await taskDestroyed(xapi, asyncTask(xapi, 'VM.clean_shutdown', mark), mark)
      })

      it('cancelling callAsync calls task.cancel and stops the work', async () => {
        await xapi.call('VM.add_to_other_config', vm, 'sim:delay-start', '3000')
        const { cancel, token } = CancelToken.source()
        const mark = rpcLog(xapi).length
        const t0 = Date.now()
        const promise = xapi.callAsync(token, 'VM.start', vm, false, false)
        await waitFor(() => callsOf(xapi, 'Async.VM.start', mark)[0]?.result, 5e3, 'the task ref')
        const taskRef = asyncTask(xapi, 'VM.start', mark)
        for (;;) {
          const ops = await xapi.call('VM.get_current_operations', vm)
          if (ops[taskRef] === 'start') break
          await sleep(20)
        }
        cancel()
        await assert.rejects(withTimeout(promise, 5e3, 'cancelled start'), error => error instanceof Cancel)
        assert.ok(Date.now() - t0 < 2800, 'the start stopped early')
        assert.ok(callsOf(xapi, 'task.cancel', mark).some(c => c.args[1] === taskRef), 'task.cancel was sent')
        assert.equal(await xapi.call('VM.get_power_state', vm), 'Halted')
        await taskDestroyed(xapi, taskRef, mark)
        await xapi.call('VM.remove_from_other_config', vm, 'sim:delay-start')
      })

      it('other async-capable messages: host.call_plugin returns the plugin output', async () => {
        const host = xapi.pool.master
        assert.equal(await withTimeout(xapi.callAsync('host.call_plugin', host, 'echo', 'ping', {}), 5e3, 'plugin'), 'pong')
        const out = await xapi.callAsync('host.call_plugin', host, 'echo', 'echo', { b: '2', a: '1' })
        assert.equal(out, 'a=1\nb=2')
        await assert.rejects(xapi.callAsync('host.call_plugin', host, 'nope', 'x', {}), error => {
          assert.equal(error.code, 'XENAPI_MISSING_PLUGIN')
          assert.deepEqual(error.params, ['nope'])
          return true
        })
      })
    })
  }
})
