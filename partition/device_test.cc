#include "partition/device.h"

#include <gtest/gtest.h>
#include <sched.h>

namespace rlrt {
namespace {

// The affinity mask read directly, independently of the library.
cpu_set_t ProcessAffinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  return set;
}

TEST(DeviceTest, AffinityCoresMatchTheMask) {
  const cpu_set_t set = ProcessAffinity();
  StatusOr<std::vector<int>> cores = AffinityCores();
  ASSERT_TRUE(cores.ok()) << cores.status();
  ASSERT_EQ(static_cast<int>(cores->size()), CPU_COUNT(&set));
  for (size_t i = 0; i < cores->size(); ++i) {
    EXPECT_TRUE(CPU_ISSET((*cores)[i], &set));
    if (i > 0) {
      EXPECT_LT((*cores)[i - 1], (*cores)[i]);
    }
  }
}

TEST(DeviceTest, RealDevicesAreOnePerCore) {
  const cpu_set_t set = ProcessAffinity();
  StatusOr<std::vector<Device>> devices = DiscoverLocalDevices();
  ASSERT_TRUE(devices.ok()) << devices.status();
  ASSERT_EQ(static_cast<int>(devices->size()), CPU_COUNT(&set));
  for (size_t i = 0; i < devices->size(); ++i) {
    const Device& device = (*devices)[i];
    EXPECT_EQ(device.id, static_cast<int>(i));
    EXPECT_FALSE(device.is_virtual);
    EXPECT_TRUE(CPU_ISSET(device.core, &set));
    if (i > 0) {
      EXPECT_LT((*devices)[i - 1].core, device.core);
    }
  }
}

TEST(DeviceTest, VirtualDevicesGoRoundRobin) {
  StatusOr<std::vector<int>> cores = AffinityCores();
  ASSERT_TRUE(cores.ok());
  StatusOr<std::vector<Device>> devices = DiscoverLocalDevices(8);
  ASSERT_TRUE(devices.ok()) << devices.status();
  ASSERT_EQ(devices->size(), 8u);
  for (int i = 0; i < 8; ++i) {
    const Device& device = (*devices)[i];
    EXPECT_EQ(device.id, i);
    EXPECT_TRUE(device.is_virtual);
    EXPECT_EQ(device.core, (*cores)[i % cores->size()]);
  }
}

TEST(DeviceTest, NegativeCountIsAnError) {
  StatusOr<std::vector<Device>> devices = DiscoverLocalDevices(-1);
  ASSERT_FALSE(devices.ok());
  EXPECT_EQ(devices.status().code(), StatusCode::kInvalidArgument);
}

TEST(DeviceTest, ToString) {
  EXPECT_EQ(DeviceToString(Device{.id = 3, .core = 1, .is_virtual = true}),
            "cpu:3@core1(virtual)");
  EXPECT_EQ(DeviceToString(Device{.id = 0, .core = 0, .is_virtual = false}),
            "cpu:0@core0");
}

}  // namespace
}  // namespace rlrt
