'use strict'
// Stand-in for @vates/parse-duration (see README.md).
const ms = require('ms')

exports.parseDuration = function parseDuration(value) {
  if (typeof value === 'number') return value
  if (typeof value === 'string' && value !== '') {
    const n = ms(value)
    if (n !== undefined) return n
  }
  throw new TypeError(`not a valid duration: ${value}`)
}
