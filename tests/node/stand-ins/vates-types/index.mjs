// Stand-in for @vates/types (see README.md): XenAPI's vm_power_state values.
export const VM_POWER_STATE = Object.freeze({
  HALTED: 'Halted',
  PAUSED: 'Paused',
  RUNNING: 'Running',
  SUSPENDED: 'Suspended',
})
