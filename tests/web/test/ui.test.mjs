// The management page in a real browser against a real xapid (simulator).
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ARTIFACTS, PASSWORD, axe, chromiumPath, launch, rpcClient, shot, startServer } from './helpers.mjs'

if (!chromiumPath() && !process.env.CI) {
  describe('web UI', () => it('needs chromium (apt-get install chromium)', { skip: true }, () => {}))
} else {
  describe('web UI', { concurrency: 1, timeout: 300_000 }, () => {
    let server, browser, page, other
    const cspErrors = []
    const a11y = {}
    const vmName = 'web-test-vm'
    let vmUuid, vmRef

    const check = async (name) => {
      await shot(page, name)
      a11y[name] = await axe(page)
    }
    const go = async (hash) => {
      await page.evaluate((h) => (location.hash = h), hash)
    }

    before(async () => {
      server = await startServer()
      other = await rpcClient(server.url)
      browser = await launch()
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true })
      page = await ctx.newPage()
      page.setDefaultTimeout(15_000)
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text())
      })
      page.on('pageerror', (e) => cspErrors.push('page error: ' + e.message))
    })

    after(async () => {
      await browser?.close()
      await server?.stop()
    })

    it('serves the page with a CSP and no CORS header', async () => {
      const res = await fetch(server.url + '/')
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/)
      assert.equal(res.headers.get('access-control-allow-origin'), null)
      assert.equal(res.headers.get('cache-control'), 'no-cache')
      const html = await res.text()
      const asset = /\/assets\/[^"]+\.js/.exec(html)?.[0]
      assert.ok(asset, 'the built UI is embedded (run npm run build in web/ before cargo build)')
      const a = await fetch(server.url + asset)
      assert.match(a.headers.get('cache-control') ?? '', /immutable/)
    })

    it('shows a wrong password as the XenAPI error', async () => {
      await page.goto(server.url + '/')
      await page.getByLabel('Password').fill('wrong')
      await page.getByRole('button', { name: 'Log in' }).click()
      const err = page.getByRole('alert')
      await err.waitFor()
      const text = await err.innerText()
      assert.match(text, /SESSION_AUTHENTICATION_FAILED/)
      assert.ok(text.replace('SESSION_AUTHENTICATION_FAILED', '').trim().length > 10, 'a sentence follows the code')
      await check('login-error')
    })

    it('logs in and lists VMs', async () => {
      await page.getByLabel('Password').fill(PASSWORD)
      await page.getByRole('button', { name: 'Log in' }).click()
      await page.getByRole('heading', { name: 'Virtual machines' }).waitFor()
      await check('vm-list')
    })

    it('creates a VM from a template', async () => {
      await page.getByRole('link', { name: 'New VM' }).first().click()
      await page.getByRole('heading', { name: 'New VM' }).waitFor()
      await page.getByLabel('Template').selectOption({ label: 'Debian Bookworm 12' })
      await page.getByLabel('Name').fill(vmName)
      await page.getByLabel('vCPUs').fill('2')
      await page.getByLabel('Memory (MiB)').fill('512')
      // The template's disk at a size of our own, and a second disk.
      await page.getByLabel('Disk 0 size (GiB)').fill('12')
      await page.getByRole('button', { name: 'Add a disk' }).click()
      await page.getByLabel('Disk 1 size (GiB)').fill('3')
      await check('new-vm')
      await page.getByRole('button', { name: 'Create' }).click()
      await page.getByRole('heading', { name: new RegExp(vmName) }).waitFor()
      vmUuid = decodeURIComponent(await page.evaluate(() => location.hash.split('/')[2]))
      vmRef = await other.call('VM.get_by_uuid', vmUuid)
      assert.equal(await other.call('VM.get_VCPUs_max', vmRef), 2)
      assert.equal(await other.call('VM.get_memory_static_max', vmRef), 512 * 1024 * 1024)
      const vbds = await other.call('VM.get_VBDs', vmRef)
      const sizes = {}
      for (const b of vbds) {
        const rec = await other.call('VBD.get_record', b)
        if (rec.type === 'Disk') sizes[rec.userdevice] = Number(await other.call('VDI.get_virtual_size', rec.VDI))
      }
      assert.deepEqual(sizes, { 0: 12 * 2 ** 30, 1: 3 * 2 ** 30 }, 'the disks were provisioned at the sizes asked for')
      assert.equal((await other.call('VM.get_VIFs', vmRef)).length, 1)
    })

    it('starts the VM and the state arrives by event, without a reload', async () => {
      // The simulator reads its knobs when the domain is made: a slow
      // suspend (to see its progress) and a pause that fails.
      await other.call('VM.add_to_other_config', vmRef, 'sim:delay-suspend', '1500')
      await other.call('VM.add_to_other_config', vmRef, 'sim:fail-pause', 'VM_BAD_POWER_STATE,x,running,paused')
      await other.call('VM.add_to_other_config', vmRef, 'sim:delay-clean_reboot', '20000')
      await page.evaluate(() => (window.__noReload = true))
      await page.getByRole('button', { name: 'Start', exact: true }).click()
      await page.locator('h1 .state.Running').waitFor()
      assert.equal(await page.evaluate(() => window.__noReload), true)
      // A change by another client shows up as well.
      await other.call('VM.set_name_description', vmRef, 'changed elsewhere')
      await other.call('VM.set_name_label', vmRef, vmName + '-renamed')
      await page.getByRole('heading', { name: new RegExp(vmName + '-renamed') }).waitFor()
      await other.call('VM.set_name_label', vmRef, vmName)
      await page.getByRole('heading', { name: new RegExp(vmName + ' ') }).waitFor()
    })

    it('opens the console and shows the picture on a canvas', async () => {
      await page.getByText('Console connected').waitFor()
      const canvas = page.locator('.console canvas')
      await canvas.waitFor()
      let colours = 0
      for (let i = 0; i < 50 && colours < 3; i++) {
        colours = await canvas.evaluate((c) => {
          const g = c.getContext('2d')
          if (!g || !c.width || !c.height) return 0
          const d = g.getImageData(0, 0, c.width, c.height).data
          const seen = new Set()
          for (let i = 0; i < d.length && seen.size < 20; i += 4 * 13) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2])
          return seen.size
        })
        if (colours < 3) await page.waitForTimeout(200)
      }
      assert.ok(colours >= 3, `the console canvas is not blank (${colours} colours)`)
      await check('vm-running')
    })

    it('suspends with the progress shown, then resumes', async () => {
      await page.getByRole('button', { name: 'Suspend', exact: true }).click()
      await page.locator('.tasks .task progress').waitFor()
      await page.locator('h1 .state.Suspended').waitFor()
      await page.getByRole('button', { name: 'Resume', exact: true }).click()
      await page.locator('h1 .state.Running').waitFor()
    })

    it('cancels a running task from its progress row', async () => {
      await page.getByRole('button', { name: 'Reboot', exact: true }).click()
      await page.locator('.tasks .task').getByRole('button', { name: /^Cancel/ }).click()
      const err = page.locator('.vmpage > .error')
      await err.waitFor()
      assert.match(await err.innerText(), /TASK_CANCELLED/)
      await page.locator('h1 .state.Running').waitFor()
      await page.getByRole('button', { name: 'Dismiss the error' }).first().click()
    })

    it('shows a failing operation as its XenAPI error', async () => {
      await page.getByRole('button', { name: 'Pause', exact: true }).click()
      const err = page.locator('.vmpage > .error')
      await err.waitFor()
      assert.match(await err.innerText(), /^[A-Z_]+ .{10,}/)
      await check('vm-error')
      await page.getByRole('button', { name: 'Dismiss the error' }).first().click()
    })

    it('adds a disk', async () => {
      const before = (await other.call('VM.get_VBDs', vmRef)).length
      await page.getByLabel('Disk name').fill('extra-disk')
      await page.getByLabel('Size (GiB)').fill('0.5')
      await page.getByRole('button', { name: 'Add disk' }).click()
      await page.getByRole('cell', { name: 'extra-disk' }).waitFor()
      assert.equal((await other.call('VM.get_VBDs', vmRef)).length, before + 1)
    })

    it('takes and reverts a snapshot', async () => {
      await page.getByLabel('Snapshot name').fill('before-change')
      await page.getByRole('button', { name: 'Take snapshot' }).click()
      await page.locator('.snap-name', { hasText: 'before-change' }).waitFor()
      await other.call('VM.set_name_description', vmRef, 'after the snapshot')
      await page.getByRole('button', { name: 'Revert to before-change' }).click()
      // A disk snapshot of a running VM reverts to a halted VM.
      await page.locator('h1 .state.Halted').waitFor()
      assert.equal(await other.call('VM.get_name_description', vmRef), 'changed elsewhere')
      await page.getByRole('button', { name: 'Delete before-change' }).click()
      await page.locator('.snap-name', { hasText: 'before-change' }).waitFor({ state: 'detached' })
    })

    let xva
    it('exports the VM to an XVA file', async () => {
      await page.getByRole('button', { name: 'Export to XVA' }).click()
      const dl = page.waitForEvent('download')
      await page.getByRole('link', { name: /Download/ }).click()
      xva = join(ARTIFACTS, 'export.xva')
      await (await dl).saveAs(xva)
      assert.ok(statSync(xva).size > 1024, 'the export has content')
      await page.locator('.task .status', { hasText: 'success' }).waitFor()
    })

    it('imports it back with upload progress', async () => {
      await go('#/import')
      await page.getByRole('heading', { name: 'Import a VM' }).waitFor()
      await page.getByLabel('XVA file').setInputFiles(xva)
      await page.getByRole('button', { name: 'Import' }).click()
      await page.locator('.imported a').waitFor({ timeout: 60_000 })
      assert.ok(await page.getByRole('progressbar', { name: 'Upload progress' }).isVisible())
      const vms = await other.call('VM.get_by_name_label', vmName)
      assert.equal(vms.length, 2, 'the import made a second VM')
      await check('import')
    })

    it('shows a failed import as its error', async () => {
      const junk = join(ARTIFACTS, 'junk.xva')
      writeFileSync(junk, Buffer.alloc(4096, 7))
      await page.getByLabel('XVA file').setInputFiles(junk)
      await page.getByRole('button', { name: 'Import' }).click()
      const err = page.locator('form .error')
      await err.waitFor({ timeout: 30_000 })
      const text = await err.innerText()
      assert.match(text, /^[A-Z][A-Z0-9_]{3,} .{10,}/)
      assert.doesNotMatch(text, /^HTTP/)
      console.log('failed import shows: ' + text)
    })

    it('lists the VMs live on the desktop viewport', async () => {
      await go('#/')
      await page.locator(`.row[data-uuid="${vmUuid}"]`).waitFor()
      assert.equal(await page.locator('.rows .row').count(), 2)
      // A running VM gets CPU and memory sparklines from /rrd_updates.
      await other.call('VM.start', vmRef, false, false)
      const spark = page.locator(`.row[data-uuid="${vmUuid}"] svg.spark`).first()
      await spark.waitFor({ timeout: 40_000 })
      await page.waitForFunction((u) => /\d+%/.test(document.querySelector(`.row[data-uuid="${u}"] svg.spark`)?.getAttribute('aria-label') ?? ''), vmUuid, { timeout: 40_000 })
      await check('vm-list-full')
      await other.call('VM.hard_shutdown', vmRef)
    })

    for (const [hash, heading, name] of [
      ['#/overview', 'Host statistics', 'host'],
      ['#/storage', 'Storage', 'storage'],
      ['#/networks', 'Networks', 'networks'],
      ['#/tasks', 'Tasks', 'tasks'],
      ['#/messages', 'Messages', 'messages'],
    ]) {
      it(`shows the ${name} screen`, async () => {
        await go(hash)
        await page.getByRole('heading', { name: heading, exact: true }).waitFor()
        if (name === 'host') await page.locator('figure.graph').first().waitFor()
        await check(name)
      })
    }

    it('works on a phone-size viewport', async () => {
      await page.setViewportSize({ width: 390, height: 844 })
      await go('#/')
      await page.locator(`.row[data-uuid="${vmUuid}"]`).waitFor()
      await check('phone-vm-list')
      await go(`#/vm/${vmUuid}`)
      await page.getByRole('heading', { name: new RegExp(vmName) }).waitFor()
      await check('phone-vm')
      await page.setViewportSize({ width: 1280, height: 800 })
    })

    it('is usable with the keyboard', async () => {
      await go('#/')
      await page.locator('main').focus()
      await page.keyboard.press('Shift+Tab')
      // Tab through the header to the VM link and open it with Enter.
      let onLink = false
      for (let i = 0; i < 30 && !onLink; i++) {
        await page.keyboard.press('Tab')
        onLink = await page.evaluate((u) => document.activeElement?.getAttribute('href') === `#/vm/${u}`, vmUuid)
      }
      assert.ok(onLink, 'the VM link is reachable by Tab')
      await page.keyboard.press('Enter')
      await page.getByRole('heading', { name: new RegExp(vmName) }).waitFor()
    })

    it('has no serious or critical accessibility violations and no CSP errors', () => {
      const bad = Object.entries(a11y).filter(([, v]) => v.length)
      assert.deepEqual(bad, [])
      assert.deepEqual(cspErrors, [])
    })
  })
}
