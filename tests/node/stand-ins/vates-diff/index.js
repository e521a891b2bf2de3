'use strict'
// Only vhd-lib's stream validator calls this; fail loudly if a test ever does.
module.exports = function diff() {
  throw new Error('@vates/diff stand-in: not available in these tests')
}
