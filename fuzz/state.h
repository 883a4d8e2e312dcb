/*
 * Putting the allocator back into its load-time state.
 *
 * hartalloc keeps its state in static variables and has no reset call:
 * within one process, ha_early_init and ha_final_init work once.  libFuzzer
 * runs every input in the same process, so the fuzz build links the core as
 * one object whose writable statics live in two sections of their own
 * (isolate-core.sh, which also proves there is no other mutable state: no
 * other writable section, no thread-local data).  state_save() copies those
 * sections once, before the first ha_* call; state_restore() copies them
 * back.  Together with fresh memory for the heap that is exactly a new
 * process, from the allocator's point of view.
 */
#ifndef FUZZ_STATE_H
#define FUZZ_STATE_H

#include <stddef.h>

/* Bytes of allocator state saved (both sections). */
size_t state_save(void);
void state_restore(void);

#endif /* FUZZ_STATE_H */
