// The client's event watcher (event.inject + event.from) keeps its cache in
// sync with changes made through the client (xapi-reference.md §5,
// clients.md §1.2: barrier(), map edits raising pool `mod` events).

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'

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

// Resolves with the items of the next `action` ('add' | 'update' | 'remove')
// emitted by the client's collection that satisfy `pred`.
function nextCollectionEvent(xapi, action, pred) {
  return new Promise(resolve => {
    const listener = items => {
      if (pred(items)) {
        xapi.objects.removeListener(action, listener)
        resolve(items)
      }
    }
    xapi.objects.on(action, listener)
  })
}

// The two transports use separate servers and run side by side (the tests of
// each run in order) to keep the suite short: most of the time is the
// client's 200 ms event debounce.
describe('events', { concurrency: 2 }, () => {
  for (const transport of ['json-rpc', 'xml-rpc']) {
    describe(`events over ${transport}`, { concurrency: 1 }, () => {
      let server
      let xapi

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

      it('pool.add_to_other_config through call() reaches the cache', async () => {
        const key = `test-${transport}`
        await xapi.call('pool.add_to_other_config', xapi.pool.$ref, key, 'v1')
        await withTimeout(
          waitFor(() => xapi.pool.other_config[key] === 'v1', 5e3, 'pool mod'),
          6e3,
          'pool mod event'
        )
        await xapi.call('pool.remove_from_other_config', xapi.pool.$ref, key)
        await withTimeout(
          waitFor(() => !(key in xapi.pool.other_config), 5e3, 'pool mod'),
          6e3,
          'pool mod event'
        )
      })

      it('barrier() completes (its pool.add_to_other_config raises a pool mod event)', async () => {
        const pool = await withTimeout(xapi.barrier(xapi.pool.$ref), 5e3, 'barrier()')
        assert.equal(pool, xapi.pool)
        // Its key is removed right after, which the cache also sees.
        await waitFor(
          () => !Object.keys(xapi.pool.other_config).some(k => k.startsWith('xo:barrier:')),
          5e3,
          'the mod event removing the barrier key'
        )
      })

      it('XO pool marking: update_other_config(key, json) then null', async () => {
        const key = 'xo:00000000-0000-4000-8000-000000000000'
        const value = JSON.stringify({ connectedAt: Date.now() })
        // setFieldEntry: remove_from_other_config (missing key is fine) then add.
        await xapi.pool.update_other_config(key, value)
        await xapi.barrier()
        assert.equal(xapi.pool.other_config[key], value)
        // Again, now that the key exists.
        const value2 = JSON.stringify({ connectedAt: Date.now() + 1 })
        await xapi.pool.update_other_config(key, value2)
        await xapi.barrier()
        assert.equal(xapi.pool.other_config[key], value2)
        await xapi.pool.update_other_config(key, null)
        await xapi.barrier()
        assert.equal(key in xapi.pool.other_config, false)
      })

      it('setField on string, int, bool and set fields', async () => {
        const poolRef = xapi.pool.$ref
        await xapi.setField('pool', poolRef, 'name_label', `pool over ${transport}`)
        await xapi.setField('pool', poolRef, 'migration_compression', true)
        await xapi.setField('pool', poolRef, 'tags', ['a', 'b'])
        const [net] = objectsOfType(xapi, 'network')
        await xapi.setField('network', net.$ref, 'MTU', 9000)
        await xapi.barrier()
        assert.equal(xapi.pool.name_label, `pool over ${transport}`)
        assert.equal(xapi.pool.migration_compression, true)
        assert.deepEqual([...xapi.pool.tags].sort(), ['a', 'b'])
        assert.equal(Number(xapi.getObjectByRef(net.$ref).MTU), 9000)
        await xapi.call('pool.remove_tags', poolRef, 'a')
        await xapi.call('pool.add_tags', poolRef, 'c')
        await xapi.setField('pool', poolRef, 'migration_compression', false)
        await xapi.setField('network', net.$ref, 'MTU', 1500)
        await xapi.barrier()
        assert.deepEqual([...xapi.pool.tags].sort(), ['b', 'c'])
        assert.equal(xapi.pool.migration_compression, false)
        assert.equal(Number(xapi.getObjectByRef(net.$ref).MTU), 1500)
      })

      it('a VM mod event maps the lower-case class back to VM', async () => {
        const tpl = objectsOfType(xapi, 'VM').find(vm => vm.is_a_template)
        const updated = nextCollectionEvent(xapi, 'update', items => tpl.uuid in items)
        await xapi.call('VM.set_name_description', tpl.$ref, `changed over ${transport}`)
        const items = await withTimeout(updated, 5e3, 'VM update in the collection')
        const vm = items[tpl.uuid]
        assert.equal(vm.$type, 'VM')
        assert.equal(vm.name_description, `changed over ${transport}`)
        assert.equal(xapi.getObjectByRef(tpl.$ref), vm)
        // No object of a lower-case type appeared.
        assert.equal(objectsOfType(xapi, 'vm').length, 0)
      })

      it('network.create / network.destroy are seen as add / remove', async () => {
        const name = `net over ${transport}`
        const added = nextCollectionEvent(xapi, 'add', items =>
          Object.values(items).some(o => o.$type === 'network' && o.name_label === name)
        )
        // MTU is an int: a JSON number, or a string over XML-RPC (the client
        // casts ints to strings there).
        const ref = await xapi.call('network.create', { name_label: name, other_config: {}, MTU: 9000 })
        assert.ok(isRef(ref))
        await withTimeout(added, 5e3, 'network add in the collection')
        const net = xapi.getObjectByRef(ref)
        assert.equal(net.$type, 'network')
        assert.equal(net.name_label, name)
        assert.deepEqual(net.other_config, {})
        assert.deepEqual(net.PIFs, [])
        assert.deepEqual(net.VIFs, [])
        assert.equal(Number(net.MTU), 9000)

        const removed = nextCollectionEvent(xapi, 'remove', items => net.uuid in items)
        await xapi.call('network.destroy', ref)
        await withTimeout(removed, 5e3, 'network remove in the collection')
        assert.equal(xapi.getObjectByRef(ref, undefined), undefined)
        assert.equal(xapi.objects.all[net.uuid], undefined)
      })

      it('network.create without a bridge gets a fresh xapiN bridge', async () => {
        const ref = await xapi.call('network.create', { name_label: `bridge test ${transport}`, other_config: {} })
        try {
          const net = await xapi.barrier(ref)
          assert.match(net.bridge, /^xapi\d+$/)
          const bridges = objectsOfType(xapi, 'network').filter(n => n.$ref !== ref).map(n => n.bridge)
          assert.ok(!bridges.includes(net.bridge), 'bridge name is unused')
          assert.equal(Number(net.MTU), 1500)
        } finally {
          await xapi.call('network.destroy', ref)
        }
      })

      it('VIF.create / destroy update the reverse references VM.VIFs and network.VIFs', async () => {
        const tpl = objectsOfType(xapi, 'VM').find(vm => vm.is_a_template && vm.VIFs.length === 0)
        const netRef = await xapi.call('network.create', { name_label: `vif net ${transport}`, other_config: {} })
        const vif = await xapi.call('VIF.create', {
          device: '0',
          network: netRef,
          VM: tpl.$ref,
          MAC: '',
          MTU: 1500,
          other_config: {},
          qos_algorithm_type: '',
          qos_algorithm_params: {},
        })
        await xapi.barrier()
        assert.equal(xapi.getObjectByRef(vif).$type, 'VIF')
        assert.deepEqual(xapi.getObjectByRef(netRef).VIFs, [vif])
        assert.deepEqual(xapi.getObjectByRef(tpl.$ref).VIFs, [vif])

        await xapi.call('VIF.destroy', vif)
        await xapi.barrier()
        assert.equal(xapi.getObjectByRef(vif, undefined), undefined)
        assert.deepEqual(xapi.getObjectByRef(netRef).VIFs, [])
        assert.deepEqual(xapi.getObjectByRef(tpl.$ref).VIFs, [])
        await xapi.call('network.destroy', netRef)
        await xapi.barrier()
        assert.equal(xapi.getObjectByRef(netRef, undefined), undefined)
      })

      it('message.create / message.destroy (XO alarms) are seen as add / remove', async () => {
        const [host] = objectsOfType(xapi, 'host')
        const ref = await xapi.call('message.create', 'TEST_ALARM', 3, 'Host', host.uuid, `body over ${transport}`)
        assert.ok(isRef(ref))
        const msg = await withTimeout(xapi.barrier(ref), 5e3, 'message add')
        assert.equal(msg.$type, 'message')
        assert.equal(msg.name, 'TEST_ALARM')
        assert.equal(Number(msg.priority), 3)
        assert.equal(msg.cls, 'Host')
        assert.equal(msg.obj_uuid, host.uuid)
        assert.equal(msg.body, `body over ${transport}`)
        if (msg.timestamp instanceof Date) assert.ok(!Number.isNaN(+msg.timestamp))
        else assert.match(msg.timestamp, /^\d{8}T\d\d:\d\d:\d\dZ$/)
        await xapi.call('message.destroy', ref)
        await xapi.barrier()
        assert.equal(xapi.getObjectByRef(ref, undefined), undefined)
      })

      it('createTask / watchTask: task events settle the client\'s task watchers', async () => {
        // Success: result is an XML-RPC fragment, parsed by the client.
        const ref = await xapi.createTask(`task over ${transport}`)
        const task = await xapi.barrier(ref)
        assert.equal(task.$type, 'task')
        assert.equal(task.status, 'pending')
        assert.equal(task.name_label, `task over ${transport}`)
        const poolRef = xapi.pool.$ref
        await xapi.call('task.set_result', ref, `<value>${poolRef}</value>`)
        await xapi.call('task.set_status', ref, 'success')
        assert.equal(await withTimeout(xapi.watchTask(ref), 5e3, 'watchTask success'), poolRef)
        // createTask destroys the task once it has settled: a del event.
        await waitFor(() => xapi.getObjectByRef(ref, undefined) === undefined, 5e3, 'task removed from the cache')

        // Failure: error_info becomes an XapiError.
        const ref2 = await xapi.createTask(`failing task over ${transport}`)
        await xapi.call('task.set_error_info', ref2, ['HANDLE_INVALID', 'VM', 'OpaqueRef:NULL'])
        await xapi.call('task.set_status', ref2, 'failure')
        await assert.rejects(withTimeout(xapi.watchTask(ref2), 5e3, 'watchTask failure'), error => {
          assert.equal(error.code, 'HANDLE_INVALID')
          assert.deepEqual(error.params, ['VM', 'OpaqueRef:NULL'])
          return true
        })
        await waitFor(() => xapi.getObjectByRef(ref2, undefined) === undefined, 5e3, 'task removed from the cache')
      })

      it('valid_ref_counts.task matches the cached tasks (no task refetch loop)', async () => {
        await xapi.barrier()
        const last = rpcLog(xapi).filter(c => c.method === 'event.from' && c.result !== undefined).at(-1)
        const counts = last.result.valid_ref_counts
        assert.equal(typeof counts.task, 'number', 'valid_ref_counts.task is an int on the wire')
        assert.equal(counts.task, objectsOfType(xapi, 'task').length)
      })

      it('task.destroy on a pending task marks it (current_operations {task: destroy})', async () => {
        const ref = await xapi.call('task.create', 'pending', '')
        await xapi.call('task.destroy', ref)
        const task = await xapi.barrier(ref)
        assert.equal(task.status, 'pending')
        assert.deepEqual(task.current_operations, { task: 'destroy' })
        await xapi.call('task.set_status', ref, 'success')
        await xapi.call('task.destroy', ref)
        await xapi.barrier()
        assert.equal(xapi.getObjectByRef(ref, undefined), undefined)
      })

      it('the event loop never failed', () => {
        assert.equal(xapi.watchEventsError, undefined)
        for (const c of rpcLog(xapi).filter(c => c.method === 'event.from' && c.end !== undefined)) {
          assert.equal(c.error, undefined, c.error?.message)
        }
      })
    })
  }
})
