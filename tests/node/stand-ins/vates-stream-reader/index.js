'use strict'
// Only vhd-lib's stream validator uses this; fail loudly if a test ever does.
module.exports = class StreamReader {
  constructor() {
    throw new Error('@vates/stream-reader stand-in: not available in these tests')
  }
}
