// vhd-lib 4.16's disk consumers on top of 4.15.0 (see ../README.md).
//
// 4.16 lets the writer of a backup give the VHD's identity: the footer's
// uuid (XO writes the exported snapshot's uuid, and later finds the base of
// a delta on the remote by it) and, for a differencing VHD, its parent's
// uuid and relative path in the header. 4.15.0 ignores these options, so a
// delta never finds its base on the remote and every run is a full.
import { DiskConsumerVhdStream as Stream415 } from 'vhd-lib-4.15.0/disk-consumer/DiskConsumerVhdStream.mjs'
import { DiskConsumerVhdDirectory as Directory415 } from 'vhd-lib-4.15.0/disk-consumer/DiskConsumerVhdDirectory.mjs'
import vhdUtils from 'vhd-lib-4.15.0/Vhd/_utils.js'
import structs from 'vhd-lib-4.15.0/_structs.js'

const { unpackFooter, unpackHeader } = vhdUtils
const { fuFooter, fuHeader, checksumStruct } = structs

function repack(struct, fields) {
  const buffer = struct.pack(fields)
  checksumStruct(buffer, struct)
  return buffer
}

// Footer and header as 4.15.0 computes them, with the identity applied.
function withIdentity(Base) {
  return class extends Base {
    #identity
    constructor(source, target, identity) {
      super(source, target)
      this.#identity = identity
    }
    computeVhdFooter() {
      const { uuid } = this.#identity
      const footer = super.computeVhdFooter()
      if (!uuid) return footer
      return repack(fuFooter, { ...unpackFooter(footer), uuid })
    }
    computeVhdHeader() {
      const { parentUuid, parentPath } = this.#identity
      const header = super.computeVhdHeader()
      if (!parentUuid && !parentPath) return header
      const fields = unpackHeader(header)
      if (parentUuid) fields.parentUuid = parentUuid
      if (parentPath) fields.parentUnicodeName = parentPath
      return repack(fuHeader, fields)
    }
  }
}

const VhdStreamConsumer = withIdentity(Stream415)
const VhdDirectoryConsumer = withIdentity(Directory415)

export async function toVhdStream(disk, { signal, uuid, parentUuid, parentPath } = {}) {
  const consumer = new VhdStreamConsumer(disk, undefined, { uuid, parentUuid, parentPath })
  return consumer.toStream(signal)
}

// Returns the size of the VHD written: its metadata and blocks.
export async function writeToVhdDirectory({ disk, target, signal }) {
  const { uuid, parentUuid, parentPath } = target
  const consumer = new VhdDirectoryConsumer(disk, target, { uuid, parentUuid, parentPath })
  const { fileSize } = consumer.computeVhdBatAndFileSize()
  await consumer.write(signal)
  return fileSize
}
