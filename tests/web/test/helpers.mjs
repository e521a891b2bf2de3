// A xapid of the test's own on a free loopback port, a JSON-RPC client for
// "another client", and Debian's chromium through playwright-core.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { canConnect, freePort } from '../../shared/net.mjs'

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const ARTIFACTS = join(HERE, 'artifacts')
export const XAPID = process.env.XAPID_BIN ? resolve(process.env.XAPID_BIN) : resolve(HERE, '../../target/debug/xapid')
export const PASSWORD = 'test-password'

export function chromiumPath() {
  for (const p of [process.env.CHROMIUM_BIN, '/usr/bin/chromium', '/usr/bin/chromium-browser'])
    if (p && existsSync(p)) return p
  return null
}


export async function startServer(extra = []) {
  const dir = mkdtempSync(join(tmpdir(), 'xapid-web-test-'))
  const port = await freePort()
  const log = join(dir, 'xapid.log')
  const fd = openSync(log, 'a')
  const proc = spawn(XAPID, ['--data-dir', dir, '--http', `127.0.0.1:${port}`, '--unix', join(dir, 'sock'),
    '--root-password', PASSWORD, '--login-failure-delay-ms', '100', ...extra], { stdio: ['ignore', fd, fd] })
  closeSync(fd)
  let exited = false
  proc.once('exit', () => (exited = true))
  process.once('exit', () => proc.kill('SIGKILL'))
  const deadline = Date.now() + 20_000
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) throw new Error('xapid did not start:\n' + readFileSync(log, 'utf8'))
    await sleep(50)
  }
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    log: () => readFileSync(log, 'utf8'),
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM')
        for (let i = 0; i < 100 && !exited; i++) await sleep(50)
        if (!exited) proc.kill('SIGKILL')
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A second client: plain JSON-RPC, as any other program would. */
export async function rpcClient(url) {
  let id = 0
  const raw = async (method, params) => {
    const r = await fetch(url + '/jsonrpc', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
    })
    const j = await r.json()
    if (j.error) throw new Error(`${j.error.message} ${JSON.stringify(j.error.data)}`)
    return j.result
  }
  const sid = await raw('session.login_with_password', ['root', PASSWORD, '1.0', 'web-test'])
  return { sid, call: (m, ...a) => raw(m, [sid, ...a]) }
}

export async function launch() {
  const { chromium } = await import('playwright-core')
  const executablePath = chromiumPath()
  if (!executablePath) throw new Error('no chromium (apt-get install chromium)')
  mkdirSync(ARTIFACTS, { recursive: true })
  // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
}

/** A screenshot saved under artifacts/, checked to have some picture in it. */
export async function shot(page, name) {
  const path = join(ARTIFACTS, `${name}.png`)
  const png = await page.screenshot({ path, fullPage: false })
  const colours = await page.evaluate(async (b64) => {
    const img = new Image()
    img.src = 'data:image/png;base64,' + b64
    await img.decode()
    const c = document.createElement('canvas')
    c.width = img.width
    c.height = img.height
    const g = c.getContext('2d')
    g.drawImage(img, 0, 0)
    const d = g.getImageData(0, 0, c.width, c.height).data
    const seen = new Set()
    for (let i = 0; i < d.length && seen.size < 50; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2])
    return seen.size
  }, png.toString('base64'))
  if (colours < 3) throw new Error(`screenshot ${name} looks blank (${colours} colours)`)
  return path
}

const AXE = readFileSync(join(HERE, 'node_modules/axe-core/axe.min.js'), 'utf8')

/** axe-core's serious and critical violations on the page as it is. */
export async function axe(page) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(AXE + '\n;0')
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }))
  return res.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')}`)
}
