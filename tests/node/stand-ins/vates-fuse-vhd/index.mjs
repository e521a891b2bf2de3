// Stand-in for @vates/fuse-vhd (see README.md). XO uses mount() only for
// file-level restore (browsing files inside a backed-up disk through FUSE),
// which these tests do not exercise: it fails loudly rather than pretend.
export async function mount() {
  throw new Error('@vates/fuse-vhd stand-in: FUSE mounts (file-level restore) are not available in these tests')
}
