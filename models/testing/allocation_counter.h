// Counting every global operator new of a test binary, to show that a
// steady-state path allocates nothing. Link allocation_counter.cc into the
// test binary (it replaces the global operator new and delete).
#ifndef RLRT_MODELS_TESTING_ALLOCATION_COUNTER_H_
#define RLRT_MODELS_TESTING_ALLOCATION_COUNTER_H_

namespace rlrt::testing {

// Calls of the global operator new so far, on any thread.
long AllocationCount();
// The bytes they asked for, in all.
long AllocatedBytes();

}  // namespace rlrt::testing

#endif  // RLRT_MODELS_TESTING_ALLOCATION_COUNTER_H_
