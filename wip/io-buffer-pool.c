// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pools of IOMMU-mapped bounce buffers for dma-iommu streaming mappings.
 *
 * Where an IOMMU map or unmap is costly (a guest behind virtio-iommu, strict
 * invalidation, s390), copying a small buffer is cheaper than mapping it.
 * Each DMA domain gets a pool: per size class, a fixed IOVA range split into
 * slots.  A slot gets pages and an IOMMU mapping the first time it is needed
 * and keeps both while it waits in a cache for the next mapping with the same
 * protection, so the device still reaches nothing but the buffers it was
 * handed, and a streaming mapping costs a copy instead of a map and an unmap.
 *
 * Semantics follow swiotlb: the slot is filled from the caller's buffer at map
 * time for every direction (bytes the device does not write read back as the
 * caller's own), copied back at unmap and sync-for-cpu for DMA_FROM_DEVICE and
 * DMA_BIDIRECTIONAL, copied in at sync-for-device for DMA_TO_DEVICE and
 * DMA_BIDIRECTIONAL; DMA_ATTR_SKIP_CPU_SYNC skips the unmap copy and the
 * cache maintenance.  Whatever the pool cannot serve falls back to the normal
 * dma-iommu path and is counted.  Slots idle for two eviction periods are
 * unmapped and their pages freed.
 */

#define pr_fmt(fmt) "io-buffer-pool: " fmt

#include <linux/debugfs.h>
#include <linux/dma-map-ops.h>
#include <linux/highmem.h>
#include <linux/iommu.h>
#include <linux/iova.h>
#include <linux/log2.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/scatterlist.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "dma-iommu.h"
#include "io-buffer-pool.h"

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "iommu."

#define IOBP_MAX_CLASSES	8
#define IOBP_MAX_SLOTS		4096
#define IOBP_MIN_IDLE_MS	10
#define IOBP_MAX_IDLE_MS	600000
/* Protection bits that select a cache; any other bit is not pooled. */
#define IOBP_PROT_BITS		(IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE | IOMMU_PRIV)
#define IOBP_NR_PROT		16

enum iobp_stat {
	IOBP_BOUNCED,
	IOBP_FILLED,
	IOBP_EVICTED,
	IOBP_FB_TOO_BIG,
	IOBP_FB_FULL,
	IOBP_FB_NOMEM,
	IOBP_FB_MAP,
	IOBP_FB_MASK,
	IOBP_FB_LAYOUT,
	IOBP_NR_STATS
};

static const char * const iobp_stat_names[IOBP_NR_STATS] = {
	[IOBP_BOUNCED]		= "bounced",
	[IOBP_FILLED]		= "slots_filled",
	[IOBP_EVICTED]		= "slots_evicted",
	[IOBP_FB_TOO_BIG]	= "fallback_too_big",
	[IOBP_FB_FULL]		= "fallback_class_full",
	[IOBP_FB_NOMEM]		= "fallback_no_memory",
	[IOBP_FB_MAP]		= "fallback_map_failed",
	[IOBP_FB_MASK]		= "fallback_dma_mask",
	[IOBP_FB_LAYOUT]	= "fallback_sg_layout",
};

struct iobp_counters {
	unsigned long n[IOBP_NR_STATS];
};

static DEFINE_PER_CPU(struct iobp_counters, iobp_counts);
static atomic_long_t iobp_nr_mapped;

static void iobp_count(enum iobp_stat s)
{
	this_cpu_inc(iobp_counts.n[s]);
}

static unsigned long iobp_stat_sum(enum iobp_stat s)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(iobp_counts, cpu).n[s];
	return sum;
}

/**
 * struct iobp_slot - one bounce buffer of a size class
 * @node: entry in the class's empty list or in one of its caches
 * @pages: the slot's pages while it holds memory, else NULL
 * @prot: IOMMU protection the slot is mapped with, valid while @pages is set
 * @marked: idle since the last eviction pass
 * @busy: a mapping is in flight; the fields below describe it
 * @orig: physical address of the caller's buffer (single mappings)
 * @sgl: the caller's scatterlist (scatterlist mappings), else NULL
 * @nents: entries in @sgl
 * @offset: where the data starts inside the slot
 * @len: bytes in flight
 */
struct iobp_slot {
	struct list_head node;
	struct page **pages;
	int prot;
	bool marked;
	bool busy;
	phys_addr_t orig;
	struct scatterlist *sgl;
	int nents;
	unsigned int offset;
	size_t len;
};

/**
 * struct iobp_class - the slots of one size
 * @lock: protects the lists, @nr_cached and the slots' list membership
 * @shift: log2 of the slot size
 * @nslots: number of slots
 * @base: first IOVA of the class's range; slot i starts at base + (i << shift)
 * @iova: the reserved IOVA range
 * @slots: the slots
 * @empty: slots without memory
 * @cached: idle mapped slots, one list per protection
 * @nr_cached: number of slots on the @cached lists
 */
struct iobp_class {
	spinlock_t lock;
	unsigned int shift;
	unsigned int nslots;
	dma_addr_t base;
	struct iova *iova;
	struct iobp_slot *slots;
	struct list_head empty;
	struct list_head cached[IOBP_NR_PROT];
	unsigned int nr_cached;
};

/**
 * struct io_buffer_pool - the bounce buffers of one DMA domain
 * @domain: the domain the slots are mapped in
 * @iovad: the domain's IOVA allocator, where the class ranges are reserved
 * @nr_classes: number of classes in use, smallest first
 * @classes: the size classes
 * @evict_work: periodic eviction of idle slots
 */
struct io_buffer_pool {
	struct iommu_domain *domain;
	struct iova_domain *iovad;
	unsigned int nr_classes;
	struct iobp_class classes[IOBP_MAX_CLASSES];
	struct delayed_work evict_work;
};

/* Knobs: iommu.bounce=, iommu.bounce_threshold=, ... on the command line. */
static bool iobp_enabled = true;
module_param_named(bounce, iobp_enabled, bool, 0644);
MODULE_PARM_DESC(bounce, "Bounce small streaming DMA through pre-mapped buffers");

static unsigned int iobp_threshold = CONFIG_IOMMU_IO_BUFFER_THRESHOLD;
static unsigned int iobp_slots = CONFIG_IOMMU_IO_BUFFER_SLOTS;
static unsigned int iobp_class_mask = 0x3f;
static unsigned int iobp_idle_ms = 1000;

static int iobp_set_uint(const char *val, const struct kernel_param *kp,
			 unsigned int min, unsigned int max)
{
	unsigned int v;

	if (kstrtouint(val, 0, &v) || v < min || v > max) {
		pr_err("iommu.%s=%s rejected: expected an integer from %u to %u\n",
		       kp->name + strlen(MODULE_PARAM_PREFIX), val, min, max);
		return -EINVAL;
	}
	*(unsigned int *)kp->arg = v;
	return 0;
}

static int iobp_threshold_set(const char *val, const struct kernel_param *kp)
{
	return iobp_set_uint(val, kp, 0, PAGE_SIZE << (IOBP_MAX_CLASSES - 1));
}

static int iobp_slots_set(const char *val, const struct kernel_param *kp)
{
	return iobp_set_uint(val, kp, 1, IOBP_MAX_SLOTS);
}

static int iobp_classes_set(const char *val, const struct kernel_param *kp)
{
	return iobp_set_uint(val, kp, 1, BIT(IOBP_MAX_CLASSES) - 1);
}

static int iobp_idle_set(const char *val, const struct kernel_param *kp)
{
	return iobp_set_uint(val, kp, IOBP_MIN_IDLE_MS, IOBP_MAX_IDLE_MS);
}

#define IOBP_PARAM(name, var, setter, perm, desc)			\
	static const struct kernel_param_ops iobp_##name##_ops = {	\
		.set = setter,						\
		.get = param_get_uint,					\
	};								\
	module_param_cb(name, &iobp_##name##_ops, &var, perm);	\
	MODULE_PARM_DESC(name, desc)

IOBP_PARAM(bounce_threshold, iobp_threshold, iobp_threshold_set, 0644,
	   "Largest mapping in bytes that is bounced (0: none)");
IOBP_PARAM(bounce_slots, iobp_slots, iobp_slots_set, 0444,
	   "Slots per size class and domain");
IOBP_PARAM(bounce_classes, iobp_class_mask, iobp_classes_set, 0444,
	   "Size classes: bit n selects slots of PAGE_SIZE << n");
IOBP_PARAM(bounce_idle_ms, iobp_idle_ms, iobp_idle_set, 0644,
	   "Idle time after which a cached slot may be freed");

static unsigned int iobp_prot_index(int prot)
{
	return (prot & IOMMU_READ ? 1 : 0) | (prot & IOMMU_WRITE ? 2 : 0) |
	       (prot & IOMMU_CACHE ? 4 : 0) | (prot & IOMMU_PRIV ? 8 : 0);
}

static size_t iobp_class_size(const struct iobp_class *c)
{
	return (size_t)1 << c->shift;
}

static dma_addr_t iobp_slot_iova(const struct iobp_class *c,
				 const struct iobp_slot *slot)
{
	return c->base + ((dma_addr_t)(slot - c->slots) << c->shift);
}

static dma_addr_t iobp_class_end(const struct iobp_class *c)
{
	return c->base + ((dma_addr_t)c->nslots << c->shift) - 1;
}

/* Copy between the slot (at byte soff) and physical memory, page by page. */
static void iobp_copy_phys(struct iobp_slot *slot, size_t soff,
			   phys_addr_t phys, size_t len, bool to_slot)
{
	while (len) {
		size_t sin = offset_in_page(soff), oin = offset_in_page(phys);
		size_t n = min3(len, PAGE_SIZE - sin, PAGE_SIZE - oin);
		void *s = kmap_local_page(slot->pages[soff >> PAGE_SHIFT]);
		void *o = kmap_local_page(pfn_to_page(PHYS_PFN(phys)));

		if (to_slot)
			memcpy(s + sin, o + oin, n);
		else
			memcpy(o + oin, s + sin, n);
		kunmap_local(o);
		kunmap_local(s);
		soff += n;
		phys += n;
		len -= n;
	}
}

/*
 * Copy @len bytes at data offset @pos between the slot and the caller's
 * buffer: a physically contiguous range, or the scatterlist packed in order.
 */
static void iobp_bounce(struct iobp_slot *slot, size_t pos, size_t len,
			bool to_slot)
{
	size_t soff = slot->offset + pos;
	struct scatterlist *sg;
	int i;

	if (!slot->sgl) {
		iobp_copy_phys(slot, soff, slot->orig + pos, len, to_slot);
		return;
	}
	for_each_sg(slot->sgl, sg, slot->nents, i) {
		size_t n;

		if (!len)
			break;
		if (pos >= sg->length) {
			pos -= sg->length;
			continue;
		}
		n = min_t(size_t, len, sg->length - pos);
		iobp_copy_phys(slot, soff, sg_phys(sg) + pos, n, to_slot);
		soff += n;
		len -= n;
		pos = 0;
	}
}

/* Cache maintenance on the slot's own memory for non-coherent devices. */
static void iobp_arch_sync(struct iobp_slot *slot, size_t pos, size_t len,
			   enum dma_data_direction dir, bool for_cpu)
{
	size_t soff = slot->offset + pos;

	while (len) {
		size_t n = min_t(size_t, len, PAGE_SIZE - offset_in_page(soff));
		phys_addr_t p = page_to_phys(slot->pages[soff >> PAGE_SHIFT]) +
				offset_in_page(soff);

		if (for_cpu)
			arch_sync_dma_for_cpu(p, n, dir);
		else
			arch_sync_dma_for_device(p, n, dir);
		soff += n;
		len -= n;
	}
}

/* Map the slot's pages at its IOVA, merging physically contiguous runs. */
static int iobp_map_slot(struct io_buffer_pool *pool, struct iobp_class *c,
			 struct iobp_slot *slot, int prot)
{
	unsigned int i, j, n = iobp_class_size(c) >> PAGE_SHIFT;
	dma_addr_t iova = iobp_slot_iova(c, slot);
	int ret;

	for (i = 0; i < n; i = j) {
		phys_addr_t p = page_to_phys(slot->pages[i]);

		for (j = i + 1; j < n; j++)
			if (page_to_phys(slot->pages[j]) !=
			    p + ((phys_addr_t)(j - i) << PAGE_SHIFT))
				break;
		ret = iommu_map(pool->domain, iova + ((dma_addr_t)i << PAGE_SHIFT),
				p, (size_t)(j - i) << PAGE_SHIFT, prot, GFP_ATOMIC);
		if (ret) {
			if (i)
				iommu_unmap(pool->domain, iova,
					    (size_t)i << PAGE_SHIFT);
			return ret;
		}
	}
	slot->prot = prot;
	return 0;
}

/* Unmap a slot that holds memory and free its pages; the slot is off-list. */
static void iobp_release_slot(struct io_buffer_pool *pool, struct iobp_class *c,
			      struct iobp_slot *slot)
{
	dma_addr_t iova = iobp_slot_iova(c, slot);
	size_t size = iobp_class_size(c);

	if (iommu_unmap(pool->domain, iova, size) != size)
		pr_warn_ratelimited("slot at %pad was not fully unmapped\n",
				    &iova);
	iommu_dma_free_page_array(slot->pages, size >> PAGE_SHIFT);
	slot->pages = NULL;
	atomic_long_dec(&iobp_nr_mapped);
}

static void iobp_return_empty(struct iobp_class *c, struct iobp_slot *slot)
{
	unsigned long flags;

	spin_lock_irqsave(&c->lock, flags);
	slot->busy = false;
	list_add(&slot->node, &c->empty);
	spin_unlock_irqrestore(&c->lock, flags);
}

/*
 * Take a slot mapped with @prot: a cached one if there is one, else fill an
 * empty slot, else remap a slot cached with another protection.
 */
static struct iobp_slot *iobp_get_slot(struct io_buffer_pool *pool,
				       struct iobp_class *c, struct device *dev,
				       int prot)
{
	unsigned int i, idx = iobp_prot_index(prot);
	size_t size = iobp_class_size(c);
	struct iobp_slot *slot;
	unsigned long flags;

	spin_lock_irqsave(&c->lock, flags);
	slot = list_first_entry_or_null(&c->cached[idx], struct iobp_slot, node);
	if (slot) {
		list_del(&slot->node);
		c->nr_cached--;
		slot->marked = false;
		slot->busy = true;
		spin_unlock_irqrestore(&c->lock, flags);
		return slot;
	}
	slot = list_first_entry_or_null(&c->empty, struct iobp_slot, node);
	for (i = 0; !slot && i < IOBP_NR_PROT; i++) {
		slot = list_first_entry_or_null(&c->cached[i], struct iobp_slot,
						node);
		if (slot)
			c->nr_cached--;
	}
	if (!slot) {
		spin_unlock_irqrestore(&c->lock, flags);
		iobp_count(IOBP_FB_FULL);
		return NULL;
	}
	list_del(&slot->node);
	slot->marked = false;
	slot->busy = true;
	spin_unlock_irqrestore(&c->lock, flags);

	if (slot->pages) {
		/* A slot cached with other permissions: remap it. */
		iommu_unmap(pool->domain, iobp_slot_iova(c, slot), size);
	} else {
		slot->pages = iommu_dma_alloc_page_array(dev, size >> PAGE_SHIFT,
							 (2UL << get_order(size)) - 1,
							 GFP_ATOMIC);
		if (!slot->pages) {
			iobp_return_empty(c, slot);
			iobp_count(IOBP_FB_NOMEM);
			return NULL;
		}
		atomic_long_inc(&iobp_nr_mapped);
	}
	if (iobp_map_slot(pool, c, slot, prot)) {
		iommu_dma_free_page_array(slot->pages, size >> PAGE_SHIFT);
		slot->pages = NULL;
		atomic_long_dec(&iobp_nr_mapped);
		iobp_return_empty(c, slot);
		iobp_count(IOBP_FB_MAP);
		return NULL;
	}
	iobp_count(IOBP_FILLED);
	return slot;
}

static void iobp_put_slot(struct io_buffer_pool *pool, struct iobp_class *c,
			  struct iobp_slot *slot)
{
	unsigned long flags;

	spin_lock_irqsave(&c->lock, flags);
	slot->busy = false;
	slot->sgl = NULL;
	list_add(&slot->node, &c->cached[iobp_prot_index(slot->prot)]);
	c->nr_cached++;
	spin_unlock_irqrestore(&c->lock, flags);
	if (!delayed_work_pending(&pool->evict_work))
		queue_delayed_work(system_unbound_wq, &pool->evict_work,
				   msecs_to_jiffies(READ_ONCE(iobp_idle_ms)));
}

/*
 * One eviction pass: free the cached slots marked by the previous pass and
 * mark the others.  Returns true while slots remain cached.
 */
static bool iobp_evict(struct io_buffer_pool *pool)
{
	struct iobp_slot *slot, *tmp;
	bool cached = false;
	unsigned int i, k;

	for (k = 0; k < pool->nr_classes; k++) {
		struct iobp_class *c = &pool->classes[k];
		LIST_HEAD(victims);

		spin_lock_irq(&c->lock);
		for (i = 0; i < IOBP_NR_PROT; i++) {
			list_for_each_entry_safe(slot, tmp, &c->cached[i], node) {
				if (slot->marked) {
					list_move(&slot->node, &victims);
					c->nr_cached--;
				} else {
					slot->marked = true;
				}
			}
		}
		cached |= c->nr_cached;
		spin_unlock_irq(&c->lock);

		list_for_each_entry_safe(slot, tmp, &victims, node) {
			list_del(&slot->node);
			iobp_release_slot(pool, c, slot);
			slot->marked = false;
			iobp_count(IOBP_EVICTED);
			spin_lock_irq(&c->lock);
			list_add_tail(&slot->node, &c->empty);
			spin_unlock_irq(&c->lock);
		}
	}
	return cached;
}

static void iobp_evict_work(struct work_struct *work)
{
	struct io_buffer_pool *pool =
		container_of(to_delayed_work(work), struct io_buffer_pool,
			     evict_work);

	if (iobp_evict(pool))
		queue_delayed_work(system_unbound_wq, &pool->evict_work,
				   msecs_to_jiffies(READ_ONCE(iobp_idle_ms)));
}

static struct iobp_slot *iobp_lookup(struct io_buffer_pool *pool,
				     dma_addr_t dma, struct iobp_class **cp)
{
	unsigned int k;

	if (!pool)
		return NULL;
	for (k = 0; k < pool->nr_classes; k++) {
		struct iobp_class *c = &pool->classes[k];

		if (dma >= c->base && dma <= iobp_class_end(c)) {
			*cp = c;
			return &c->slots[(dma - c->base) >> c->shift];
		}
	}
	return NULL;
}

/* The smallest class that holds @need bytes and that @dev can address. */
static struct iobp_class *iobp_pick_class(struct io_buffer_pool *pool,
					  struct device *dev, size_t need)
{
	u64 limit = min_not_zero(dma_get_mask(dev), dev->bus_dma_limit);
	unsigned int k;

	for (k = 0; k < pool->nr_classes; k++) {
		struct iobp_class *c = &pool->classes[k];

		if (need > iobp_class_size(c))
			continue;
		if (iobp_class_end(c) > limit) {
			iobp_count(IOBP_FB_MASK);
			return NULL;
		}
		return c;
	}
	iobp_count(IOBP_FB_TOO_BIG);
	return NULL;
}

static bool iobp_wanted(struct io_buffer_pool *pool, struct device *dev,
			size_t size, int prot)
{
	return pool && READ_ONCE(iobp_enabled) && size &&
	       size <= READ_ONCE(iobp_threshold) && !(prot & ~IOBP_PROT_BITS) &&
	       !dev_is_untrusted(dev);
}

/**
 * io_buffer_pool_map_page() - map a physically contiguous buffer through a slot
 * @pool: the domain's pool, may be NULL
 * @dev: the device the mapping is for
 * @phys: physical address of the buffer
 * @size: length of the buffer in bytes
 * @prot: IOMMU protection the mapping needs
 * @dir: DMA direction
 * @attrs: DMA attributes
 *
 * The slot keeps @phys's offset within an IOMMU granule, so the device sees
 * the same alignment as without the pool (NVMe's min_align_mask relies on it).
 *
 * Return: the device address, or DMA_MAPPING_ERROR when the pool does not
 * serve this mapping and the caller must take the normal path.
 */
dma_addr_t io_buffer_pool_map_page(struct io_buffer_pool *pool,
				   struct device *dev, phys_addr_t phys,
				   size_t size, int prot,
				   enum dma_data_direction dir,
				   unsigned long attrs)
{
	unsigned int off;
	struct iobp_class *c;
	struct iobp_slot *slot;

	if (!iobp_wanted(pool, dev, size, prot))
		return DMA_MAPPING_ERROR;
	off = iova_offset(pool->iovad, phys);
	c = iobp_pick_class(pool, dev, off + size);
	if (!c)
		return DMA_MAPPING_ERROR;
	slot = iobp_get_slot(pool, c, dev, prot);
	if (!slot)
		return DMA_MAPPING_ERROR;

	slot->orig = phys;
	slot->sgl = NULL;
	slot->offset = off;
	slot->len = size;
	/* Every direction: what the device does not write stays the caller's. */
	iobp_bounce(slot, 0, size, true);
	if (!dev_is_dma_coherent(dev) && !(attrs & DMA_ATTR_SKIP_CPU_SYNC))
		iobp_arch_sync(slot, 0, size, dir, false);
	iobp_count(IOBP_BOUNCED);
	return iobp_slot_iova(c, slot) + off;
}

static void iobp_finish(struct io_buffer_pool *pool, struct device *dev,
			struct iobp_class *c, struct iobp_slot *slot,
			enum dma_data_direction dir, unsigned long attrs)
{
	if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC)) {
		if (!dev_is_dma_coherent(dev))
			iobp_arch_sync(slot, 0, slot->len, dir, true);
		if (dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL)
			iobp_bounce(slot, 0, slot->len, false);
	}
	iobp_put_slot(pool, c, slot);
}

/**
 * io_buffer_pool_unmap_page() - end a mapping made by io_buffer_pool_map_page()
 * @pool: the domain's pool, may be NULL
 * @dev: the device the mapping is for
 * @dma_addr: the device address the map call returned
 * @size: length of the mapping
 * @dir: DMA direction
 * @attrs: DMA attributes
 *
 * Return: true if @dma_addr belonged to the pool (and is now unmapped), false
 * if the caller must unmap it on the normal path.
 */
bool io_buffer_pool_unmap_page(struct io_buffer_pool *pool,
			       struct device *dev, dma_addr_t dma_addr,
			       size_t size, enum dma_data_direction dir,
			       unsigned long attrs)
{
	struct iobp_class *c;
	struct iobp_slot *slot = iobp_lookup(pool, dma_addr, &c);

	if (!slot)
		return false;
	if (WARN_ONCE(!slot->busy || slot->sgl || size != slot->len,
		      "%s: bad unmap of bounce slot at %pad\n", dev_name(dev),
		      &dma_addr))
		return true;
	iobp_finish(pool, dev, c, slot, dir, attrs);
	return true;
}

static bool iobp_sync(struct io_buffer_pool *pool, struct device *dev,
		      dma_addr_t dma_addr, size_t pos, size_t size,
		      enum dma_data_direction dir, bool for_cpu)
{
	struct iobp_class *c;
	struct iobp_slot *slot = iobp_lookup(pool, dma_addr, &c);

	if (!slot)
		return false;
	if (WARN_ONCE(!slot->busy || pos > slot->len || size > slot->len - pos,
		      "%s: bad sync of bounce slot at %pad\n", dev_name(dev),
		      &dma_addr))
		return true;
	if (for_cpu) {
		if (!dev_is_dma_coherent(dev))
			iobp_arch_sync(slot, pos, size, dir, true);
		if (dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL)
			iobp_bounce(slot, pos, size, false);
	} else {
		if (dir == DMA_TO_DEVICE || dir == DMA_BIDIRECTIONAL)
			iobp_bounce(slot, pos, size, true);
		if (!dev_is_dma_coherent(dev))
			iobp_arch_sync(slot, pos, size, dir, false);
	}
	return true;
}

/**
 * io_buffer_pool_sync_single() - sync part of a pool mapping
 * @pool: the domain's pool, may be NULL
 * @dev: the device the mapping is for
 * @dma_addr: device address inside the mapping
 * @size: bytes to sync
 * @dir: DMA direction
 * @for_cpu: true to hand the bytes to the CPU, false to hand them to the device
 *
 * Return: true if @dma_addr belonged to the pool, false if the caller must
 * sync on the normal path.
 */
bool io_buffer_pool_sync_single(struct io_buffer_pool *pool,
				struct device *dev, dma_addr_t dma_addr,
				size_t size, enum dma_data_direction dir,
				bool for_cpu)
{
	struct iobp_class *c;
	struct iobp_slot *slot = iobp_lookup(pool, dma_addr, &c);
	dma_addr_t start;

	if (!slot)
		return false;
	start = iobp_slot_iova(c, slot) + slot->offset;
	if (WARN_ONCE(dma_addr < start, "%s: bad sync of bounce slot at %pad\n",
		      dev_name(dev), &dma_addr))
		return true;
	return iobp_sync(pool, dev, dma_addr, dma_addr - start, size, dir,
			 for_cpu);
}

/**
 * io_buffer_pool_map_sg() - pack a scatterlist into one slot
 * @pool: the domain's pool, may be NULL
 * @dev: the device the mapping is for
 * @sgl: the scatterlist
 * @nents: number of entries in @sgl
 * @prot: IOMMU protection the mapping needs
 * @dir: DMA direction
 * @attrs: DMA attributes
 *
 * The entries are copied back to back into one slot, starting at the first
 * entry's offset within an IOMMU granule.  The device segments are split at
 * multiples of the device's maximum segment size (rounded down to a power of
 * two) and never cross its segment boundary.
 *
 * Return: the number of device segments, or 0 when the pool does not serve
 * this mapping and the caller must take the normal path.
 */
int io_buffer_pool_map_sg(struct io_buffer_pool *pool, struct device *dev,
			  struct scatterlist *sgl, int nents, int prot,
			  enum dma_data_direction dir, unsigned long attrs)
{
	unsigned long boundary = dma_get_seg_boundary(dev);
	size_t seg, total = 0, left;
	struct scatterlist *sg;
	struct iobp_class *c;
	struct iobp_slot *slot;
	dma_addr_t start, addr;
	unsigned int off;
	int i, count;

	if (!pool || nents <= 0)
		return 0;
	for_each_sg(sgl, sg, nents, i)
		total += sg->length;
	if (!iobp_wanted(pool, dev, total, prot))
		return 0;
	off = iova_offset(pool->iovad, sg_phys(sgl));
	c = iobp_pick_class(pool, dev, off + total);
	if (!c)
		return 0;

	seg = rounddown_pow_of_two(dma_get_max_seg_size(dev));
	if (boundary != ULONG_MAX)
		seg = min_t(size_t, seg, boundary + 1);
	if (seg < PAGE_SIZE ||
	    (boundary != ULONG_MAX && iobp_class_size(c) - 1 > boundary)) {
		iobp_count(IOBP_FB_LAYOUT);
		return 0;
	}
	/* Segments needed: seg-aligned pieces of [off, off + total). */
	count = (off + total - 1) / seg - off / seg + 1;
	if (count > nents) {
		iobp_count(IOBP_FB_LAYOUT);
		return 0;
	}

	slot = iobp_get_slot(pool, c, dev, prot);
	if (!slot)
		return 0;
	slot->orig = 0;
	slot->sgl = sgl;
	slot->nents = nents;
	slot->offset = off;
	slot->len = total;
	iobp_bounce(slot, 0, total, true);
	if (!dev_is_dma_coherent(dev) && !(attrs & DMA_ATTR_SKIP_CPU_SYNC))
		iobp_arch_sync(slot, 0, total, dir, false);

	start = iobp_slot_iova(c, slot);
	addr = start + off;
	left = total;
	count = 0;
	for_each_sg(sgl, sg, nents, i) {
		size_t n = 0;

		if (left) {
			n = min_t(size_t, left, seg - ((addr - start) & (seg - 1)));
			sg_dma_address(sg) = addr;
			addr += n;
			left -= n;
			count++;
		} else {
			sg_dma_address(sg) = DMA_MAPPING_ERROR;
		}
		sg_dma_len(sg) = n;
	}
	iobp_count(IOBP_BOUNCED);
	return count;
}

/**
 * io_buffer_pool_unmap_sg() - end a mapping made by io_buffer_pool_map_sg()
 * @pool: the domain's pool, may be NULL
 * @dev: the device the mapping is for
 * @sgl: the scatterlist that was mapped
 * @nents: number of entries passed to the map call
 * @dir: DMA direction
 * @attrs: DMA attributes
 *
 * Return: true if @sgl was mapped by the pool (and is now unmapped), false if
 * the caller must unmap it on the normal path.
 */
bool io_buffer_pool_unmap_sg(struct io_buffer_pool *pool, struct device *dev,
			     struct scatterlist *sgl, int nents,
			     enum dma_data_direction dir, unsigned long attrs)
{
	dma_addr_t dma_addr = sg_dma_address(sgl);
	struct iobp_class *c;
	struct iobp_slot *slot = iobp_lookup(pool, dma_addr, &c);

	if (!slot)
		return false;
	if (WARN_ONCE(!slot->busy || slot->sgl != sgl,
		      "%s: bad unmap of bounce slot at %pad\n", dev_name(dev),
		      &dma_addr))
		return true;
	iobp_finish(pool, dev, c, slot, dir, attrs);
	return true;
}

/**
 * io_buffer_pool_sync_sg() - sync a scatterlist mapped by the pool
 * @pool: the domain's pool, may be NULL
 * @dev: the device the mapping is for
 * @sgl: the scatterlist that was mapped
 * @nents: number of entries passed to the map call
 * @dir: DMA direction
 * @for_cpu: true to hand the data to the CPU, false to hand it to the device
 *
 * Return: true if @sgl was mapped by the pool, false if the caller must sync
 * on the normal path.
 */
bool io_buffer_pool_sync_sg(struct io_buffer_pool *pool, struct device *dev,
			    struct scatterlist *sgl, int nents,
			    enum dma_data_direction dir, bool for_cpu)
{
	struct iobp_class *c;
	struct iobp_slot *slot = iobp_lookup(pool, sg_dma_address(sgl), &c);

	if (!slot)
		return false;
	return iobp_sync(pool, dev, sg_dma_address(sgl), 0, slot->len, dir,
			 for_cpu);
}

static void iobp_free_classes(struct io_buffer_pool *pool)
{
	struct iobp_slot *slot;
	unsigned int i, k;

	for (k = 0; k < pool->nr_classes; k++) {
		struct iobp_class *c = &pool->classes[k];

		for (i = 0; i < c->nslots; i++) {
			slot = &c->slots[i];
			WARN_ONCE(slot->busy,
				  "pool destroyed with a mapping in flight\n");
			if (slot->pages)
				iobp_release_slot(pool, c, slot);
		}
		kvfree(c->slots);
		__free_iova(pool->iovad, c->iova);
	}
	pool->nr_classes = 0;
}

/**
 * io_buffer_pool_create() - set up the bounce pool of a DMA domain
 * @domain: the domain, initialised for DMA
 * @iovad: the domain's IOVA allocator
 * @dev: the first device attached; its DMA mask bounds the reserved ranges
 *
 * Reserves one IOVA range per size class selected by iommu.bounce_classes,
 * with iommu.bounce_slots slots each, aligned to the class size.  No memory is
 * allocated for the slots until they are used.  A class whose range cannot be
 * reserved is left out.
 *
 * Return: the pool, or NULL if no class could be set up.
 */
struct io_buffer_pool *io_buffer_pool_create(struct iommu_domain *domain,
					     struct iova_domain *iovad,
					     struct device *dev)
{
	u64 limit = min_not_zero(dma_get_mask(dev), dev->bus_dma_limit);
	unsigned int i, n, shift = iova_shift(iovad);
	unsigned long order, mask = READ_ONCE(iobp_class_mask);
	unsigned int nslots = READ_ONCE(iobp_slots);
	struct io_buffer_pool *pool;

	if (iovad->granule > PAGE_SIZE)
		return NULL;
	if (domain->geometry.force_aperture)
		limit = min_t(u64, limit, domain->geometry.aperture_end);

	pool = kzalloc(sizeof(*pool), GFP_KERNEL);
	if (!pool)
		return NULL;
	pool->domain = domain;
	pool->iovad = iovad;
	INIT_DELAYED_WORK(&pool->evict_work, iobp_evict_work);

	for_each_set_bit(order, &mask, IOBP_MAX_CLASSES) {
		struct iobp_class *c = &pool->classes[pool->nr_classes];
		size_t size = PAGE_SIZE << order;

		c->iova = alloc_iova(iovad, (nslots * size) >> shift,
				     limit >> shift, true);
		if (!c->iova) {
			pr_warn("%s: no IOVA space for %u slots of %zu bytes\n",
				dev_name(dev), nslots, size);
			continue;
		}
		c->slots = kvcalloc(nslots, sizeof(*c->slots), GFP_KERNEL);
		if (!c->slots) {
			__free_iova(iovad, c->iova);
			continue;
		}
		spin_lock_init(&c->lock);
		c->shift = ilog2(size);
		c->nslots = nslots;
		c->base = iova_dma_addr(iovad, c->iova);
		INIT_LIST_HEAD(&c->empty);
		for (i = 0; i < IOBP_NR_PROT; i++)
			INIT_LIST_HEAD(&c->cached[i]);
		for (n = 0; n < nslots; n++)
			list_add_tail(&c->slots[n].node, &c->empty);
		pool->nr_classes++;
	}
	if (!pool->nr_classes) {
		kfree(pool);
		return NULL;
	}
	return pool;
}

/**
 * io_buffer_pool_destroy() - free a pool and everything it holds
 * @pool: the pool, may be NULL
 *
 * Called when the domain is freed, after every mapping has been unmapped.
 */
void io_buffer_pool_destroy(struct io_buffer_pool *pool)
{
	if (!pool)
		return;
	cancel_delayed_work_sync(&pool->evict_work);
	iobp_free_classes(pool);
	kfree(pool);
}

static int iobp_stats_show(struct seq_file *m, void *v)
{
	int s;

	for (s = 0; s < IOBP_NR_STATS; s++)
		seq_printf(m, "%s %lu\n", iobp_stat_names[s], iobp_stat_sum(s));
	seq_printf(m, "slots_mapped %ld\n", atomic_long_read(&iobp_nr_mapped));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(iobp_stats);

static int __init iobp_debugfs_init(void)
{
	struct dentry *dir = debugfs_create_dir("io_buffer_pool", NULL);

	debugfs_create_file("stats", 0444, dir, NULL, &iobp_stats_fops);
	return 0;
}
late_initcall(iobp_debugfs_init);

#if IS_ENABLED(CONFIG_IOMMU_IO_BUFFER_KUNIT_TEST)
#include "io-buffer-pool-test.c"
#endif
