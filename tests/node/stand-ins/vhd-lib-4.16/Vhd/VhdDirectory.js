'use strict'
// vhd-lib 4.15.0, unchanged (see ../README.md).
module.exports = require('vhd-lib-4.15.0/Vhd/VhdDirectory.js')
