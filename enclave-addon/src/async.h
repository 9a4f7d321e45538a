// The async plumbing: every key-store call runs on libuv's thread pool as a
// Napi::AsyncWorker and settles a Promise, so a slow token (a PIN pad, a
// Touch ID prompt, a USB round trip) never blocks the JavaScript thread.
#ifndef CREDPORT_ASYNC_H_
#define CREDPORT_ASYNC_H_

#include <napi.h>

#include <deque>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <utility>

#include "errors.h"
#include "js_interop.h"

namespace credport {

// For work that returns nothing.
struct Done {};

// Runs a session's calls one at a time, in the order they were made. Each
// call holds a libuv thread-pool thread while it runs; a session serialises
// its calls natively anyway, so queueing them all would park up to every
// pool thread on one session's lock, and fs and dns work in the process would
// wait behind them. Used only on the JavaScript thread.
class SerialQueue {
 public:
  void Push(Napi::AsyncWorker* worker) {
    pending_.push_back(worker);
    if (!busy_) Next();
  }
  // Called by the running worker once it has settled its Promise.
  void Done() {
    busy_ = false;
    Next();
  }

 private:
  void Next() {
    if (pending_.empty()) return;
    busy_ = true;
    Napi::AsyncWorker* worker = pending_.front();
    pending_.pop_front();
    worker->Queue();
  }

  std::deque<Napi::AsyncWorker*> pending_;
  bool busy_ = false;
};

template <typename T>
class PromiseWorker final : public Napi::AsyncWorker {
 public:
  using Work = std::function<T()>;                          // runs on a worker thread; throws KeyError
  using Convert = std::function<Napi::Value(Napi::Env, T&)>;  // runs on the JS thread

  // `name` labels the work in async_hooks and diagnostics ("credport:pkcs11.sign").
  // With a `queue`, the work waits for the queue's earlier work to finish.
  static Napi::Promise Run(Napi::Env env, const char* name, Work work, Convert convert,
                           std::shared_ptr<SerialQueue> queue = nullptr) {
    auto* worker = new PromiseWorker(env, name, std::move(work), std::move(convert));
    Napi::Promise promise = worker->deferred_.Promise();
    // The worker deletes itself after OnOK/OnError.
    if (queue) {
      worker->queue_ = queue;
      queue->Push(worker);
    } else {
      worker->Queue();
    }
    return promise;
  }

 private:
  PromiseWorker(Napi::Env env, const char* name, Work work, Convert convert)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        convert_(std::move(convert)) {}

  void Execute() override {
    // No JavaScript here, and nothing may escape: the error is carried to OnOK.
    try {
      result_.emplace(work_());
    } catch (const KeyError& e) {
      error_.emplace(e);
    } catch (const std::bad_alloc&) {
      error_.emplace(ErrorCode::kBackendError, "out of memory");
    } catch (const std::exception& e) {
      error_.emplace(ErrorCode::kBackendError, e.what());
    } catch (...) {
      error_.emplace(ErrorCode::kBackendError, "unexpected native error");
    }
    work_ = nullptr;  // drop captured references (sessions, keys) on the worker thread
  }

  void OnOK() override {
    Settle();
    if (queue_) queue_->Done();
  }

  void OnError(const Napi::Error& e) override {
    deferred_.Reject(e.Value());
    if (queue_) queue_->Done();
  }

  void Settle() {
    Napi::Env env = Env();
    if (error_) {
      deferred_.Reject(js::ToJsError(env, *error_).Value());
      return;
    }
    try {
      deferred_.Resolve(convert_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const KeyError& e) {
      deferred_.Reject(js::ToJsError(env, e).Value());
    } catch (const std::exception& e) {
      // A conversion that ran out of memory or hit a library error must
      // still settle the Promise, not unwind into Node.
      deferred_.Reject(js::ToJsError(env, KeyError(ErrorCode::kBackendError, e.what())).Value());
    }
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  Convert convert_;
  std::optional<T> result_;
  std::optional<KeyError> error_;
  std::shared_ptr<SerialQueue> queue_;
};

}  // namespace credport

#endif  // CREDPORT_ASYNC_H_
