#include "partition/device.h"

#include <sched.h>

#include <cerrno>
#include <cstring>

namespace rlrt {

StatusOr<std::vector<int>> AffinityCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    return InternalError(std::string("sched_getaffinity failed: ") +
                         std::strerror(errno));
  }
  std::vector<int> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cores.push_back(cpu);
  }
  if (cores.empty()) return InternalError("affinity mask has no cores");
  return cores;
}

StatusOr<std::vector<Device>> DiscoverLocalDevices(int num_virtual_devices) {
  if (num_virtual_devices < 0) {
    return InvalidArgumentError("number of virtual devices must be >= 0, got " +
                                std::to_string(num_virtual_devices));
  }
  ASSIGN_OR_RETURN(std::vector<int> cores, AffinityCores());
  const bool is_virtual = num_virtual_devices > 0;
  const int count =
      is_virtual ? num_virtual_devices : static_cast<int>(cores.size());
  std::vector<Device> devices;
  devices.reserve(count);
  for (int i = 0; i < count; ++i) {
    devices.push_back(Device{
        .id = i, .core = cores[i % cores.size()], .is_virtual = is_virtual});
  }
  return devices;
}

Status PinCallingThreadToDevices(const std::vector<Device>& devices) {
  if (devices.empty()) return InvalidArgumentError("no devices to pin to");
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const Device& d : devices) CPU_SET(d.core, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    return InternalError(std::string("sched_setaffinity failed: ") +
                         std::strerror(errno));
  }
  return OkStatus();
}

std::string DeviceToString(const Device& device) {
  std::string out = "cpu:" + std::to_string(device.id) + "@core" +
                    std::to_string(device.core);
  if (device.is_virtual) out += "(virtual)";
  return out;
}

}  // namespace rlrt
