// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuse_fh.c - the file handles the kernel holds (fi->fh of open files and directories)
 * as slots of a state table (RESTART_T_HANDLES, restart.h), so that a resumed daemon
 * knows every handle an earlier generation gave out: fh = seq << 32 | slot, where seq
 * counts the slot's uses (a resent RELEASE of a slot freed and reused since is stale).
 * The objects behind them (struct handle, struct dirh) are fuse_file.c's and
 * fuse_dir.c's; a resumed generation makes them again from the records (fh_resume()).
 */
#include "fuse_int.h"
#include "restart.h"

#include <stdlib.h>

#define FH_TAB_CAP (1u << 20)
#define FH_TAB_LAYOUT 1

static struct {
	struct restart_table *tab;
	void **obj;	/* slot -> object, NULL while reserved or free */
} fht;

int fh_table_init(void)
{
	fht.tab = restart_table_open(RESTART_T_HANDLES, sizeof(struct fh_rec), FH_TAB_LAYOUT,
				     FH_TAB_CAP);
	if (!fht.tab)
		return -errno;
	fht.obj = calloc(FH_TAB_CAP, sizeof(*fht.obj));
	if (!fht.obj) {
		restart_table_close(fht.tab);
		fht.tab = NULL;
		return -ENOMEM;
	}
	return 0;
}

void fh_table_exit(void)
{
	restart_table_close(fht.tab);
	fht.tab = NULL;
	free(fht.obj);
	fht.obj = NULL;
}

static uint64_t fh_make(uint32_t slot)
{
	return (uint64_t)restart_table_seq(fht.tab, slot) << 32 | slot;
}

uint64_t fh_reserve(void)
{
	int64_t slot = restart_table_alloc(fht.tab);

	if (slot < 0) {
		log_warn("handle table full (%u open files and directories): open refused",
			 FH_TAB_CAP);
		return 0;
	}
	return fh_make(slot);
}

struct fh_rec *fh_rec(uint64_t fh)
{
	return restart_table_rec(fht.tab, (uint32_t)fh);
}

void fh_publish(uint64_t fh, void *obj)
{
	uint32_t slot = (uint32_t)fh;

	__atomic_store_n(&fht.obj[slot], obj, __ATOMIC_RELEASE);
	restart_table_publish(fht.tab, slot);
}

void fh_release(uint64_t fh)
{
	uint32_t slot = (uint32_t)fh;

	__atomic_store_n(&fht.obj[slot], NULL, __ATOMIC_RELEASE);
	restart_table_free(fht.tab, slot);
}

void *fh_get(uint64_t fh, uint32_t kind)
{
	uint32_t slot = (uint32_t)fh;

	if (!fht.tab || slot >= FH_TAB_CAP || !restart_table_valid(fht.tab, slot) ||
	    restart_table_seq(fht.tab, slot) != (uint32_t)(fh >> 32) ||
	    fh_rec(fh)->kind != kind)
		return NULL;	/* stale: released, or reused since */
	return __atomic_load_n(&fht.obj[slot], __ATOMIC_ACQUIRE);
}

unsigned int fh_resume(void *(*make)(uint64_t fh, struct fh_rec *rec))
{
	uint32_t hwm;
	unsigned int n = 0;

	if (!restart_table_adopted(fht.tab))
		return 0;
	hwm = restart_table_hwm(fht.tab);
	for (uint32_t slot = 0; slot < hwm; slot++) {
		uint64_t fh;
		void *obj;

		if (!restart_table_valid(fht.tab, slot))
			continue;
		fh = fh_make(slot);
		obj = make(fh, fh_rec(fh));
		if (!obj) {
			restart_table_free(fht.tab, slot);
			continue;
		}
		fht.obj[slot] = obj;
		n++;
	}
	return n;
}
