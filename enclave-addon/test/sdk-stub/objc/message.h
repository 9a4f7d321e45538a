// A stand-in for objc/message.h. With OBJC_OLD_DISPATCH_PROTOTYPES=0 (Xcode's
// default, "strict objc_msgSend") the SDK declares objc_msgSend without a
// prototype of its own, so every call casts it to the method's real type;
// this stub declares it the same way, so an uncast call fails here too.
#pragma once
#include <objc/objc.h>
extern "C" {
void objc_msgSend(void);
}
