import { defineConfig, type Plugin } from 'vite'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// The human sentence for each XenAPI error code comes from the project's own
// catalogue (datamodel/errors.dm), so the page and the server never disagree.
function xapiErrors(): Plugin {
  const id = 'virtual:xapi-errors'
  const file = fileURLToPath(new URL('../datamodel/errors.dm', import.meta.url))
  return {
    name: 'xapi-errors',
    resolveId: (s) => (s === id ? '\0' + id : undefined),
    load(s) {
      if (s !== '\0' + id) return undefined
      this.addWatchFile(file)
      const out: Record<string, string> = {}
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const m = /^error\s+(\S+)[^-]*--\s*(.*)$/.exec(line)
        if (m) out[m[1]] = m[2].trim()
      }
      return `export default ${JSON.stringify(out)}`
    },
  }
}

export default defineConfig({
  plugins: [xapiErrors()],
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  // noVNC uses top-level await.
  build: { target: 'es2022', sourcemap: false, assetsInlineLimit: 0 },
  server: { proxy: { '/jsonrpc': 'http://127.0.0.1:8080', '/console': { target: 'ws://127.0.0.1:8080', ws: true } } },
})
