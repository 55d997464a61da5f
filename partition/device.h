// Local compute devices. On CPU a device is one core of the process's
// affinity mask; for tests and planning, N virtual devices can be mapped
// round-robin onto the real cores (8 devices on a 2-core machine).
#ifndef RLRT_PARTITION_DEVICE_H_
#define RLRT_PARTITION_DEVICE_H_

#include <string>
#include <vector>

#include "base/status.h"

namespace rlrt {

struct Device {
  int id = 0;    // Dense, 0..N-1, in core order.
  int core = 0;  // The CPU this device's worker thread is pinned to.
  bool is_virtual = false;
};

// The cores in this process's affinity mask (sched_getaffinity), ascending.
StatusOr<std::vector<int>> AffinityCores();

// One device per core of the affinity mask when num_virtual_devices == 0;
// otherwise num_virtual_devices virtual devices, device i on core
// cores[i % cores.size()]. Negative counts are an error.
StatusOr<std::vector<Device>> DiscoverLocalDevices(int num_virtual_devices = 0);

// Restricts the calling thread to the cores of `devices` (a mesh's helper
// threads, such as the sampler's scheduler, stay on the mesh's cores).
Status PinCallingThreadToDevices(const std::vector<Device>& devices);

std::string DeviceToString(
    const Device& device);  // e.g. "cpu:3@core1(virtual)"

}  // namespace rlrt

#endif  // RLRT_PARTITION_DEVICE_H_
