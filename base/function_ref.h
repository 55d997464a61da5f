// FunctionRef: a non-owning reference to a callable, two words wide.
// Used for work handed to mesh workers: unlike std::function it never
// allocates, so dispatching work on hot paths (decode steps, weight
// updates) stays allocation-free. The callable must outlive the call.
#ifndef RLRT_BASE_FUNCTION_REF_H_
#define RLRT_BASE_FUNCTION_REF_H_

#include <memory>
#include <type_traits>
#include <utility>

namespace rlrt {

template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F>
  requires(!std::is_same_v<std::decay_t<F>, FunctionRef> &&
           std::is_invocable_r_v<R, F&, Args...>)
      FunctionRef(F&& f)  // NOLINT: implicit by design, like absl::FunctionRef
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        invoke_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(
              std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const {
    return invoke_(object_, std::forward<Args>(args)...);
  }

 private:
  void* object_;
  R (*invoke_)(void*, Args...);
};

}  // namespace rlrt

#endif  // RLRT_BASE_FUNCTION_REF_H_
