// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the io-buffer-pool.  The pool runs against a mock IOMMU
 * domain whose ops record every mapping in a table, and a mock device that
 * reads and writes memory only through that table, with its permissions.
 *
 * Included by io-buffer-pool.c, so the tests see the pool's internals.
 */
#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/xarray.h>

#define IOBP_PTE_SHIFT	6	/* low bits of a mock PTE hold the prot */

struct iobp_mock {
	struct iommu_domain domain;
	struct iova_domain iovad;
	struct xarray ptes;		/* IOVA pfn -> (pfn << 6) | prot */
	atomic_t map_calls;
	atomic_t fail_maps;		/* fail this many map calls */
	struct device *dev;
	struct device_dma_parameters parms;
	u64 mask;
	struct io_buffer_pool *pool;
	unsigned int saved_threshold, saved_slots, saved_classes;
	bool saved_enabled;
};

static struct iobp_mock *iobp_to_mock(struct iommu_domain *d)
{
	return container_of(d, struct iobp_mock, domain);
}

static int iobp_mock_map(struct iommu_domain *d, unsigned long iova,
			 phys_addr_t paddr, size_t pgsize, size_t pgcount,
			 int prot, gfp_t gfp, size_t *mapped)
{
	struct iobp_mock *m = iobp_to_mock(d);
	size_t i;

	if (atomic_add_unless(&m->fail_maps, -1, 0))
		return -ENOMEM;
	for (i = 0; i < pgcount; i++) {
		unsigned long pfn = PHYS_PFN(paddr) + i;
		void *old = xa_store(&m->ptes, (iova >> PAGE_SHIFT) + i,
				     xa_mk_value((pfn << IOBP_PTE_SHIFT) | prot),
				     gfp);

		if (xa_is_err(old))
			return xa_err(old);
		/* Mapping over a live entry is a pool bug. */
		if (WARN_ON(old))
			return -EEXIST;
	}
	atomic_inc(&m->map_calls);
	*mapped = pgsize * pgcount;
	return 0;
}

static size_t iobp_mock_unmap(struct iommu_domain *d, unsigned long iova,
			      size_t pgsize, size_t pgcount,
			      struct iommu_iotlb_gather *gather)
{
	struct iobp_mock *m = iobp_to_mock(d);
	size_t i;

	for (i = 0; i < pgcount; i++)
		xa_erase(&m->ptes, (iova >> PAGE_SHIFT) + i);
	return pgsize * pgcount;
}

static const struct iommu_domain_ops iobp_mock_ops = {
	.map_pages	= iobp_mock_map,
	.unmap_pages	= iobp_mock_unmap,
};

static unsigned long iobp_mock_nr_ptes(struct iobp_mock *m)
{
	unsigned long idx, n = 0;
	void *e;

	xa_for_each(&m->ptes, idx, e)
		n++;
	return n;
}

static int iobp_mock_prot(struct iobp_mock *m, dma_addr_t dma)
{
	void *e = xa_load(&m->ptes, dma >> PAGE_SHIFT);

	return e ? xa_to_value(e) & (BIT(IOBP_PTE_SHIFT) - 1) : -1;
}

/* The mock device: DMA through the mock IOMMU, refused without permission. */
static bool iobp_dev_dma(struct iobp_mock *m, dma_addr_t dma, void *buf,
			 size_t len, bool write)
{
	while (len) {
		void *e = xa_load(&m->ptes, dma >> PAGE_SHIFT);
		size_t in = offset_in_page(dma), n = min(len, PAGE_SIZE - in);
		unsigned long v;
		void *p;

		if (!e)
			return false;
		v = xa_to_value(e);
		if (!(v & (write ? IOMMU_WRITE : IOMMU_READ)))
			return false;
		p = kmap_local_page(pfn_to_page(v >> IOBP_PTE_SHIFT));
		if (write)
			memcpy(p + in, buf, n);
		else
			memcpy(buf, p + in, n);
		kunmap_local(p);
		dma += n;
		buf += n;
		len -= n;
	}
	return true;
}

static bool iobp_dev_fill(struct iobp_mock *m, dma_addr_t dma, int c,
			  size_t len)
{
	void *tmp = kmalloc(len, GFP_KERNEL);
	bool ok;

	if (!tmp)
		return false;
	memset(tmp, c, len);
	ok = iobp_dev_dma(m, dma, tmp, len, true);
	kfree(tmp);
	return ok;
}

static bool iobp_all(const void *buf, int c, size_t len)
{
	return !memchr_inv(buf, c, len);
}

static void iobp_new_pool(struct kunit *test, struct iobp_mock *m)
{
	m->pool = io_buffer_pool_create(&m->domain, &m->iovad, m->dev);
	KUNIT_ASSERT_NOT_NULL(test, m->pool);
	/* The tests drive eviction by hand. */
	cancel_delayed_work_sync(&m->pool->evict_work);
}

static int iobp_test_init(struct kunit *test)
{
	struct iobp_mock *m = kunit_kzalloc(test, sizeof(*m), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, m);
	m->saved_threshold = iobp_threshold;
	m->saved_slots = iobp_slots;
	m->saved_classes = iobp_class_mask;
	m->saved_enabled = iobp_enabled;
	iobp_threshold = PAGE_SIZE << 5;
	iobp_slots = 8;
	iobp_class_mask = 0x3f;
	iobp_enabled = true;

	m->domain.type = IOMMU_DOMAIN_DMA;
	m->domain.ops = &iobp_mock_ops;
	m->domain.pgsize_bitmap = PAGE_SIZE;
	xa_init(&m->ptes);
	KUNIT_ASSERT_EQ(test, iova_cache_get(), 0);
	init_iova_domain(&m->iovad, PAGE_SIZE, 1);

	m->dev = kunit_device_register(test, "io-buffer-pool-test");
	KUNIT_ASSERT_FALSE(test, IS_ERR(m->dev));
	m->mask = DMA_BIT_MASK(64);
	m->dev->dma_mask = &m->mask;
	m->dev->coherent_dma_mask = m->mask;
	m->parms.max_segment_size = SZ_64K;
	m->parms.segment_boundary_mask = ULONG_MAX;
	m->dev->dma_parms = &m->parms;
	test->priv = m;
	return 0;
}

static void iobp_test_exit(struct kunit *test)
{
	struct iobp_mock *m = test->priv;

	io_buffer_pool_destroy(m->pool);
	put_iova_domain(&m->iovad);
	iova_cache_put();
	xa_destroy(&m->ptes);
	iobp_threshold = m->saved_threshold;
	iobp_slots = m->saved_slots;
	iobp_class_mask = m->saved_classes;
	iobp_enabled = m->saved_enabled;
}

static void *iobp_buf(struct kunit *test, size_t len, int c)
{
	void *buf = kunit_kmalloc(test, len, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, buf);
	memset(buf, c, len);
	return buf;
}

static dma_addr_t iobp_map(struct iobp_mock *m, void *buf, size_t len,
			   int prot, enum dma_data_direction dir,
			   unsigned long attrs)
{
	return io_buffer_pool_map_page(m->pool, m->dev, virt_to_phys(buf), len,
				       prot, dir, attrs);
}

/* Classes are powers of two of the granule, aligned, and filled on demand. */
static void iobp_test_classes(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	unsigned int k;

	iobp_class_mask = 0x25;		/* 4K, 16K, 128K with 4K pages */
	iobp_new_pool(test, m);
	KUNIT_ASSERT_EQ(test, m->pool->nr_classes, 3U);
	for (k = 0; k < 3; k++) {
		struct iobp_class *c = &m->pool->classes[k];
		size_t size = iobp_class_size(c);

		KUNIT_EXPECT_EQ(test, size, PAGE_SIZE << (k == 0 ? 0 : k == 1 ? 2 : 5));
		KUNIT_EXPECT_EQ(test, c->base & (size - 1), 0ULL);
		KUNIT_EXPECT_EQ(test, c->nslots, 8U);
	}
	KUNIT_EXPECT_EQ(test, iobp_mock_nr_ptes(m), 0UL);
	KUNIT_EXPECT_EQ(test, atomic_read(&m->map_calls), 0);
}

/* DMA_TO_DEVICE: the device reads the caller's bytes and may not write. */
static void iobp_test_to_device(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *buf = iobp_buf(test, 2 * PAGE_SIZE, 0x3c);
	u8 *got = iobp_buf(test, 3000, 0);
	dma_addr_t dma;

	iobp_new_pool(test, m);
	get_random_bytes(buf + 100, 3000);
	dma = iobp_map(m, buf + 100, 3000, IOMMU_READ, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, dma, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, offset_in_page(dma), offset_in_page(buf + 100));
	KUNIT_EXPECT_TRUE(test, iobp_dev_dma(m, dma, got, 3000, false));
	KUNIT_EXPECT_EQ(test, memcmp(got, buf + 100, 3000), 0);
	KUNIT_EXPECT_FALSE(test, iobp_dev_fill(m, dma, 0, 16));
	KUNIT_EXPECT_EQ(test, iobp_mock_prot(m, dma), IOMMU_READ);
	KUNIT_EXPECT_TRUE(test, io_buffer_pool_unmap_page(m->pool, m->dev, dma,
							  3000, DMA_TO_DEVICE, 0));
}

/*
 * DMA_FROM_DEVICE with a partial write: the bytes the device did not write
 * keep the caller's values, never those of the slot's previous mapping.
 */
static void iobp_test_partial_write(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *a = iobp_buf(test, PAGE_SIZE, 0xaa);
	u8 *b = iobp_buf(test, PAGE_SIZE, 0x5b);
	size_t half = PAGE_SIZE / 2;
	dma_addr_t d1, d2;

	iobp_new_pool(test, m);
	d1 = iobp_map(m, a, PAGE_SIZE, IOMMU_WRITE, DMA_FROM_DEVICE, 0);
	KUNIT_ASSERT_NE(test, d1, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_FALSE(test, iobp_dev_dma(m, d1, b, 1, false));
	KUNIT_ASSERT_TRUE(test, iobp_dev_fill(m, d1, 0xa5, PAGE_SIZE));
	io_buffer_pool_unmap_page(m->pool, m->dev, d1, PAGE_SIZE,
				  DMA_FROM_DEVICE, 0);
	KUNIT_EXPECT_TRUE(test, iobp_all(a, 0xa5, PAGE_SIZE));

	d2 = iobp_map(m, b, PAGE_SIZE, IOMMU_WRITE, DMA_FROM_DEVICE, 0);
	KUNIT_ASSERT_EQ(test, d2, d1);		/* the same slot, reused */
	KUNIT_ASSERT_TRUE(test, iobp_dev_fill(m, d2, 0x11, half));
	io_buffer_pool_unmap_page(m->pool, m->dev, d2, PAGE_SIZE,
				  DMA_FROM_DEVICE, 0);
	KUNIT_EXPECT_TRUE(test, iobp_all(b, 0x11, half));
	KUNIT_EXPECT_TRUE(test, iobp_all(b + half, 0x5b, half));
}

/* DMA_BIDIRECTIONAL: the device reads the caller's data and writes back. */
static void iobp_test_bidirectional(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *buf = iobp_buf(test, 8192, 0x77);
	u8 got[64];
	dma_addr_t dma;

	iobp_new_pool(test, m);
	dma = iobp_map(m, buf, 8192, IOMMU_READ | IOMMU_WRITE,
		       DMA_BIDIRECTIONAL, 0);
	KUNIT_ASSERT_NE(test, dma, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_TRUE(test, iobp_dev_dma(m, dma + 8000, got, 64, false));
	KUNIT_EXPECT_TRUE(test, iobp_all(got, 0x77, 64));
	KUNIT_ASSERT_TRUE(test, iobp_dev_fill(m, dma + 4096, 0x12, 4096));
	io_buffer_pool_unmap_page(m->pool, m->dev, dma, 8192,
				  DMA_BIDIRECTIONAL, 0);
	KUNIT_EXPECT_TRUE(test, iobp_all(buf, 0x77, 4096));
	KUNIT_EXPECT_TRUE(test, iobp_all(buf + 4096, 0x12, 4096));
}

/* A cached slot is reused only with the same protection. */
static void iobp_test_reuse_per_prot(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *buf = iobp_buf(test, PAGE_SIZE, 1);
	dma_addr_t d1, d2, d3;
	int calls;

	iobp_new_pool(test, m);
	d1 = iobp_map(m, buf, 512, IOMMU_READ, DMA_TO_DEVICE, 0);
	io_buffer_pool_unmap_page(m->pool, m->dev, d1, 512, DMA_TO_DEVICE, 0);
	calls = atomic_read(&m->map_calls);
	d2 = iobp_map(m, buf, 512, IOMMU_READ, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_EQ(test, d2, d1);
	KUNIT_EXPECT_EQ(test, atomic_read(&m->map_calls), calls);
	io_buffer_pool_unmap_page(m->pool, m->dev, d2, 512, DMA_TO_DEVICE, 0);

	d3 = iobp_map(m, buf, 512, IOMMU_WRITE, DMA_FROM_DEVICE, 0);
	KUNIT_ASSERT_NE(test, d3, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_NE(test, d3, d1);
	KUNIT_EXPECT_EQ(test, atomic_read(&m->map_calls), calls + 1);
	KUNIT_EXPECT_EQ(test, iobp_mock_prot(m, d3), IOMMU_WRITE);
	KUNIT_EXPECT_EQ(test, iobp_mock_prot(m, d1), IOMMU_READ);
	io_buffer_pool_unmap_page(m->pool, m->dev, d3, 512, DMA_FROM_DEVICE, 0);
}

/* A full class, a failed IOMMU map, a too large request: clean fallbacks. */
static void iobp_test_fallbacks(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *buf = iobp_buf(test, 3 * PAGE_SIZE, 0);
	unsigned long full, mapfail, big, mapped;
	dma_addr_t d[3];
	int i;

	iobp_slots = 2;
	iobp_class_mask = 0x1;
	iobp_threshold = 2 * PAGE_SIZE;
	iobp_new_pool(test, m);
	full = iobp_stat_sum(IOBP_FB_FULL);
	mapfail = iobp_stat_sum(IOBP_FB_MAP);
	big = iobp_stat_sum(IOBP_FB_TOO_BIG);

	for (i = 0; i < 3; i++)
		d[i] = iobp_map(m, buf + i * PAGE_SIZE, 256, IOMMU_READ,
				DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_NE(test, d[0], DMA_MAPPING_ERROR);
	KUNIT_EXPECT_NE(test, d[1], DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, d[2], DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, iobp_stat_sum(IOBP_FB_FULL), full + 1);
	for (i = 0; i < 2; i++)
		io_buffer_pool_unmap_page(m->pool, m->dev, d[i], 256,
					  DMA_TO_DEVICE, 0);

	/* A slot whose IOMMU map fails goes back empty, nothing stays mapped. */
	iobp_evict(m->pool);
	iobp_evict(m->pool);
	KUNIT_ASSERT_EQ(test, iobp_mock_nr_ptes(m), 0UL);
	mapped = atomic_long_read(&iobp_nr_mapped);
	atomic_set(&m->fail_maps, 1);
	d[0] = iobp_map(m, buf, 256, IOMMU_READ, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_EQ(test, d[0], DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, iobp_stat_sum(IOBP_FB_MAP), mapfail + 1);
	KUNIT_EXPECT_EQ(test, iobp_mock_nr_ptes(m), 0UL);
	KUNIT_EXPECT_EQ(test, atomic_long_read(&iobp_nr_mapped), mapped);
	d[0] = iobp_map(m, buf, 256, IOMMU_READ, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_NE(test, d[0], DMA_MAPPING_ERROR);
	io_buffer_pool_unmap_page(m->pool, m->dev, d[0], 256, DMA_TO_DEVICE, 0);

	/* Within the threshold but larger than every class. */
	d[0] = iobp_map(m, buf, PAGE_SIZE + 1, IOMMU_READ, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_EQ(test, d[0], DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, iobp_stat_sum(IOBP_FB_TOO_BIG), big + 1);
	/* Above the threshold, or pool off: not the pool's, not counted. */
	d[0] = iobp_map(m, buf, 3 * PAGE_SIZE, IOMMU_READ, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_EQ(test, d[0], DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, iobp_stat_sum(IOBP_FB_TOO_BIG), big + 1);
	iobp_enabled = false;
	d[0] = iobp_map(m, buf, 256, IOMMU_READ, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_EQ(test, d[0], DMA_MAPPING_ERROR);
	/* Addresses the pool never handed out are left to the caller. */
	KUNIT_EXPECT_FALSE(test, io_buffer_pool_unmap_page(m->pool, m->dev,
							   0x1000, 256,
							   DMA_TO_DEVICE, 0));
	KUNIT_EXPECT_FALSE(test, io_buffer_pool_sync_single(m->pool, m->dev,
							    0x1000, 256,
							    DMA_TO_DEVICE,
							    false));
}

/* Idle slots are freed after two passes; a slot used in between is kept. */
static void iobp_test_eviction(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *buf = iobp_buf(test, PAGE_SIZE, 0);
	unsigned long evicted;
	dma_addr_t dma;

	iobp_new_pool(test, m);
	evicted = iobp_stat_sum(IOBP_EVICTED);
	dma = iobp_map(m, buf, 64, IOMMU_READ, DMA_TO_DEVICE, 0);
	io_buffer_pool_unmap_page(m->pool, m->dev, dma, 64, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_EQ(test, iobp_mock_nr_ptes(m), 1UL);
	KUNIT_EXPECT_TRUE(test, iobp_evict(m->pool));		/* marks */
	dma = iobp_map(m, buf, 64, IOMMU_READ, DMA_TO_DEVICE, 0);
	io_buffer_pool_unmap_page(m->pool, m->dev, dma, 64, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_TRUE(test, iobp_evict(m->pool));		/* used: marks again */
	KUNIT_EXPECT_EQ(test, iobp_mock_nr_ptes(m), 1UL);
	KUNIT_EXPECT_FALSE(test, iobp_evict(m->pool));		/* frees */
	KUNIT_EXPECT_EQ(test, iobp_mock_nr_ptes(m), 0UL);
	KUNIT_EXPECT_EQ(test, iobp_stat_sum(IOBP_EVICTED), evicted + 1);
	cancel_delayed_work_sync(&m->pool->evict_work);
}

/* Destroying a pool unmaps and frees every slot of every class. */
static void iobp_test_teardown(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *buf = iobp_buf(test, SZ_128K, 0);
	long mapped = atomic_long_read(&iobp_nr_mapped);
	size_t sizes[] = { 100, SZ_16K, SZ_128K };
	dma_addr_t dma;
	int i;

	iobp_new_pool(test, m);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		dma = iobp_map(m, buf, sizes[i], IOMMU_READ | IOMMU_WRITE,
			       DMA_BIDIRECTIONAL, 0);
		KUNIT_ASSERT_NE(test, dma, DMA_MAPPING_ERROR);
		io_buffer_pool_unmap_page(m->pool, m->dev, dma, sizes[i],
					  DMA_BIDIRECTIONAL, 0);
	}
	KUNIT_EXPECT_EQ(test, iobp_mock_nr_ptes(m),
			(SZ_4K + SZ_16K + SZ_128K) >> PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, atomic_long_read(&iobp_nr_mapped), mapped + 3);
	io_buffer_pool_destroy(m->pool);
	m->pool = NULL;
	KUNIT_EXPECT_EQ(test, iobp_mock_nr_ptes(m), 0UL);
	KUNIT_EXPECT_EQ(test, atomic_long_read(&iobp_nr_mapped), mapped);
}

/* Scatterlists are packed into one slot, in every direction. */
static void iobp_test_sg(struct kunit *test)
{
	static const enum dma_data_direction dirs[] = {
		DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL };
	static const unsigned int offs[] = { 100, 0, 2000 };
	static const unsigned int lens[] = { 512, 1000, 1500 };
	struct iobp_mock *m = test->priv;
	u8 *pages = iobp_buf(test, 3 * PAGE_SIZE, 0);
	u8 *flat = iobp_buf(test, 3012, 0);
	struct scatterlist sgl[3];
	int d, i, n;

	iobp_new_pool(test, m);
	for (d = 0; d < ARRAY_SIZE(dirs); d++) {
		int prot = dirs[d] == DMA_TO_DEVICE ? IOMMU_READ :
			   dirs[d] == DMA_FROM_DEVICE ? IOMMU_WRITE :
			   IOMMU_READ | IOMMU_WRITE;
		size_t pos = 0;

		get_random_bytes(pages, 3 * PAGE_SIZE);
		sg_init_table(sgl, 3);
		for (i = 0; i < 3; i++)
			sg_set_buf(&sgl[i], pages + i * PAGE_SIZE + offs[i],
				   lens[i]);
		n = io_buffer_pool_map_sg(m->pool, m->dev, sgl, 3, prot,
					  dirs[d], 0);
		KUNIT_ASSERT_EQ(test, n, 1);
		KUNIT_EXPECT_EQ(test, sg_dma_len(&sgl[0]), 3012U);
		KUNIT_EXPECT_EQ(test, offset_in_page(sg_dma_address(&sgl[0])),
				100UL);
		KUNIT_EXPECT_EQ(test, sg_dma_len(&sgl[1]), 0U);
		if (prot & IOMMU_READ) {
			KUNIT_ASSERT_TRUE(test, iobp_dev_dma(m, sg_dma_address(sgl),
							     flat, 3012, false));
			for (i = 0; i < 3; pos += lens[i], i++)
				KUNIT_EXPECT_EQ(test, memcmp(flat + pos,
					pages + i * PAGE_SIZE + offs[i], lens[i]), 0);
		}
		if (prot & IOMMU_WRITE) {
			get_random_bytes(flat, 3012);
			KUNIT_ASSERT_TRUE(test, iobp_dev_dma(m, sg_dma_address(sgl),
							     flat, 3012, true));
		}
		KUNIT_EXPECT_TRUE(test, io_buffer_pool_unmap_sg(m->pool, m->dev,
								sgl, 3, dirs[d], 0));
		if (prot & IOMMU_WRITE)
			for (i = 0, pos = 0; i < 3; pos += lens[i], i++)
				KUNIT_EXPECT_EQ(test, memcmp(flat + pos,
					pages + i * PAGE_SIZE + offs[i], lens[i]), 0);
	}
}

/* Device segments respect max_seg_size; too many segments fall back. */
static void iobp_test_sg_max_seg(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *pages = iobp_buf(test, 4 * PAGE_SIZE, 0x9a);
	unsigned long layout;
	struct scatterlist sgl[4];
	dma_addr_t next;
	int i, n;

	m->parms.max_segment_size = 4096;
	iobp_new_pool(test, m);
	sg_init_table(sgl, 4);
	for (i = 0; i < 4; i++)
		sg_set_buf(&sgl[i], pages + i * PAGE_SIZE, 3000);
	n = io_buffer_pool_map_sg(m->pool, m->dev, sgl, 4, IOMMU_WRITE,
				  DMA_FROM_DEVICE, 0);
	KUNIT_ASSERT_EQ(test, n, 3);
	next = sg_dma_address(&sgl[0]);
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_EQ(test, sg_dma_address(&sgl[i]), next);
		KUNIT_EXPECT_LE(test, sg_dma_len(&sgl[i]), 4096U);
		next += sg_dma_len(&sgl[i]);
	}
	KUNIT_EXPECT_EQ(test, next - sg_dma_address(&sgl[0]), 12000ULL);
	KUNIT_ASSERT_TRUE(test, iobp_dev_fill(m, sg_dma_address(sgl), 0x21,
					      12000));
	io_buffer_pool_unmap_sg(m->pool, m->dev, sgl, 4, DMA_FROM_DEVICE, 0);
	for (i = 0; i < 4; i++)
		KUNIT_EXPECT_TRUE(test, iobp_all(pages + i * PAGE_SIZE, 0x21, 3000));

	layout = iobp_stat_sum(IOBP_FB_LAYOUT);
	sg_init_table(sgl, 2);
	sg_set_buf(&sgl[0], pages, 2 * PAGE_SIZE);
	sg_set_buf(&sgl[1], pages + 2 * PAGE_SIZE, 2 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, io_buffer_pool_map_sg(m->pool, m->dev, sgl, 2,
						    IOMMU_WRITE,
						    DMA_FROM_DEVICE, 0), 0);
	KUNIT_EXPECT_EQ(test, iobp_stat_sum(IOBP_FB_LAYOUT), layout + 1);
}

/*
 * DMA_ATTR_SKIP_CPU_SYNC skips the unmap copy but never the map-time fill;
 * explicit syncs copy the requested range only.
 */
static void iobp_test_skip_sync_and_sync(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *buf = iobp_buf(test, PAGE_SIZE, 0x22);
	u8 got[32];
	dma_addr_t dma;

	iobp_new_pool(test, m);
	dma = iobp_map(m, buf, 256, IOMMU_READ | IOMMU_WRITE, DMA_BIDIRECTIONAL,
		       DMA_ATTR_SKIP_CPU_SYNC);
	KUNIT_ASSERT_NE(test, dma, DMA_MAPPING_ERROR);
	KUNIT_ASSERT_TRUE(test, iobp_dev_dma(m, dma, got, 32, false));
	KUNIT_EXPECT_TRUE(test, iobp_all(got, 0x22, 32));
	KUNIT_ASSERT_TRUE(test, iobp_dev_fill(m, dma, 0x33, 256));
	io_buffer_pool_unmap_page(m->pool, m->dev, dma, 256, DMA_BIDIRECTIONAL,
				  DMA_ATTR_SKIP_CPU_SYNC);
	KUNIT_EXPECT_TRUE(test, iobp_all(buf, 0x22, 256));

	/* sync_for_cpu of a sub-range copies exactly that range */
	dma = iobp_map(m, buf, 256, IOMMU_WRITE, DMA_FROM_DEVICE,
		       DMA_ATTR_SKIP_CPU_SYNC);
	KUNIT_ASSERT_TRUE(test, iobp_dev_fill(m, dma, 0x44, 256));
	KUNIT_EXPECT_TRUE(test, io_buffer_pool_sync_single(m->pool, m->dev,
							   dma + 16, 16,
							   DMA_FROM_DEVICE,
							   true));
	KUNIT_EXPECT_TRUE(test, iobp_all(buf, 0x22, 16));
	KUNIT_EXPECT_TRUE(test, iobp_all(buf + 16, 0x44, 16));
	KUNIT_EXPECT_TRUE(test, iobp_all(buf + 32, 0x22, 224));
	io_buffer_pool_unmap_page(m->pool, m->dev, dma, 256, DMA_FROM_DEVICE,
				  DMA_ATTR_SKIP_CPU_SYNC);

	/* sync_for_device hands new CPU data to the device */
	dma = iobp_map(m, buf, 256, IOMMU_READ, DMA_TO_DEVICE, 0);
	memset(buf, 0x66, 256);
	KUNIT_ASSERT_TRUE(test, iobp_dev_dma(m, dma, got, 32, false));
	KUNIT_EXPECT_TRUE(test, iobp_all(got, 0x22, 32));
	io_buffer_pool_sync_single(m->pool, m->dev, dma, 256, DMA_TO_DEVICE,
				   false);
	KUNIT_ASSERT_TRUE(test, iobp_dev_dma(m, dma, got, 32, false));
	KUNIT_EXPECT_TRUE(test, iobp_all(got, 0x66, 32));
	io_buffer_pool_unmap_page(m->pool, m->dev, dma, 256, DMA_TO_DEVICE, 0);
}

/* Slots stay below the DMA mask of every device that uses the pool. */
static void iobp_test_dma_mask(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	u8 *buf = iobp_buf(test, PAGE_SIZE, 0);
	struct iobp_class *c;
	unsigned long fb;
	dma_addr_t dma;

	iobp_new_pool(test, m);		/* ranges reserved under a 64-bit mask */
	c = &m->pool->classes[0];
	KUNIT_ASSERT_GT(test, iobp_class_end(c), (dma_addr_t)DMA_BIT_MASK(32));
	m->mask = DMA_BIT_MASK(32);	/* a second, 32-bit device attaches */
	fb = iobp_stat_sum(IOBP_FB_MASK);
	dma = iobp_map(m, buf, 64, IOMMU_READ, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_EQ(test, dma, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, iobp_stat_sum(IOBP_FB_MASK), fb + 1);
	io_buffer_pool_destroy(m->pool);

	iobp_new_pool(test, m);		/* created for the 32-bit device */
	dma = iobp_map(m, buf, 64, IOMMU_READ, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, dma, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_LE(test, dma + 63, (dma_addr_t)DMA_BIT_MASK(32));
	KUNIT_EXPECT_LE(test, iobp_class_end(&m->pool->classes[m->pool->nr_classes - 1]),
			(dma_addr_t)DMA_BIT_MASK(32));
	io_buffer_pool_unmap_page(m->pool, m->dev, dma, 64, DMA_TO_DEVICE, 0);
}

struct iobp_worker {
	struct iobp_mock *m;
	struct completion done;
	unsigned int seed;
	atomic_t *errors;
};

static int iobp_worker_fn(void *data)
{
	struct iobp_worker *w = data;
	struct iobp_mock *m = w->m;
	u8 *buf = kmalloc(SZ_16K, GFP_KERNEL), *dev = kmalloc(SZ_16K, GFP_KERNEL);
	int i;

	for (i = 0; buf && dev && i < 300; i++) {
		size_t len = 1 + get_random_u32_below(SZ_16K);
		u8 c = w->seed + i;
		dma_addr_t dma;

		memset(buf, c, len);
		dma = io_buffer_pool_map_page(m->pool, m->dev, virt_to_phys(buf),
					      len, IOMMU_READ | IOMMU_WRITE,
					      DMA_BIDIRECTIONAL, 0);
		if (dma == DMA_MAPPING_ERROR)
			continue;	/* a full class is a fallback, not an error */
		if (!iobp_dev_dma(m, dma, dev, len, false) || !iobp_all(dev, c, len))
			atomic_inc(w->errors);
		memset(dev, ~c, len);
		if (!iobp_dev_dma(m, dma, dev, len, true))
			atomic_inc(w->errors);
		io_buffer_pool_unmap_page(m->pool, m->dev, dma, len,
					  DMA_BIDIRECTIONAL, 0);
		if (!iobp_all(buf, (u8)~c, len))
			atomic_inc(w->errors);
	}
	if (!buf || !dev)
		atomic_inc(w->errors);
	kfree(buf);
	kfree(dev);
	complete(&w->done);
	return 0;
}

/* Several threads map and unmap on one pool; every byte arrives intact. */
static void iobp_test_concurrent(struct kunit *test)
{
	struct iobp_mock *m = test->priv;
	struct iobp_worker w[4];
	atomic_t errors = ATOMIC_INIT(0);
	int i;

	iobp_slots = 4;
	iobp_new_pool(test, m);
	for (i = 0; i < ARRAY_SIZE(w); i++) {
		struct task_struct *t;

		w[i].m = m;
		w[i].seed = i * 64;
		w[i].errors = &errors;
		init_completion(&w[i].done);
		t = kthread_run(iobp_worker_fn, &w[i], "iobp-test/%d", i);
		KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	}
	for (i = 0; i < ARRAY_SIZE(w); i++)
		wait_for_completion(&w[i].done);
	KUNIT_EXPECT_EQ(test, atomic_read(&errors), 0);
	iobp_evict(m->pool);
	iobp_evict(m->pool);
	KUNIT_EXPECT_EQ(test, iobp_mock_nr_ptes(m), 0UL);
}

static struct kunit_case iobp_test_cases[] = {
	KUNIT_CASE(iobp_test_classes),
	KUNIT_CASE(iobp_test_to_device),
	KUNIT_CASE(iobp_test_partial_write),
	KUNIT_CASE(iobp_test_bidirectional),
	KUNIT_CASE(iobp_test_reuse_per_prot),
	KUNIT_CASE(iobp_test_fallbacks),
	KUNIT_CASE(iobp_test_eviction),
	KUNIT_CASE(iobp_test_teardown),
	KUNIT_CASE(iobp_test_sg),
	KUNIT_CASE(iobp_test_sg_max_seg),
	KUNIT_CASE(iobp_test_skip_sync_and_sync),
	KUNIT_CASE(iobp_test_dma_mask),
	KUNIT_CASE(iobp_test_concurrent),
	{}
};

static struct kunit_suite iobp_test_suite = {
	.name = "io-buffer-pool",
	.init = iobp_test_init,
	.exit = iobp_test_exit,
	.test_cases = iobp_test_cases,
};
kunit_test_suite(iobp_test_suite);
