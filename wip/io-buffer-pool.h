/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Pools of IOMMU-mapped bounce buffers for dma-iommu streaming mappings.
 *
 * Private to drivers/iommu: dma-iommu.c is the only user.
 */
#ifndef __IO_BUFFER_POOL_H
#define __IO_BUFFER_POOL_H

#include <linux/dma-direction.h>
#include <linux/types.h>

struct device;
struct iommu_domain;
struct iova_domain;
struct scatterlist;
struct io_buffer_pool;

#ifdef CONFIG_IOMMU_IO_BUFFER

struct io_buffer_pool *io_buffer_pool_create(struct iommu_domain *domain,
					     struct iova_domain *iovad,
					     struct device *dev);
void io_buffer_pool_destroy(struct io_buffer_pool *pool);

dma_addr_t io_buffer_pool_map_page(struct io_buffer_pool *pool,
				   struct device *dev, phys_addr_t phys,
				   size_t size, int prot,
				   enum dma_data_direction dir,
				   unsigned long attrs);
bool io_buffer_pool_unmap_page(struct io_buffer_pool *pool,
			       struct device *dev, dma_addr_t dma_addr,
			       size_t size, enum dma_data_direction dir,
			       unsigned long attrs);
int io_buffer_pool_map_sg(struct io_buffer_pool *pool, struct device *dev,
			  struct scatterlist *sgl, int nents, int prot,
			  enum dma_data_direction dir, unsigned long attrs);
bool io_buffer_pool_unmap_sg(struct io_buffer_pool *pool, struct device *dev,
			     struct scatterlist *sgl, int nents,
			     enum dma_data_direction dir, unsigned long attrs);
bool io_buffer_pool_sync_single(struct io_buffer_pool *pool,
				struct device *dev, dma_addr_t dma_addr,
				size_t size, enum dma_data_direction dir,
				bool for_cpu);
bool io_buffer_pool_sync_sg(struct io_buffer_pool *pool, struct device *dev,
			    struct scatterlist *sgl, int nents,
			    enum dma_data_direction dir, bool for_cpu);

#else /* CONFIG_IOMMU_IO_BUFFER */

static inline struct io_buffer_pool *
io_buffer_pool_create(struct iommu_domain *domain, struct iova_domain *iovad,
		      struct device *dev)
{
	return NULL;
}

static inline void io_buffer_pool_destroy(struct io_buffer_pool *pool)
{
}

static inline dma_addr_t
io_buffer_pool_map_page(struct io_buffer_pool *pool, struct device *dev,
			phys_addr_t phys, size_t size, int prot,
			enum dma_data_direction dir, unsigned long attrs)
{
	return DMA_MAPPING_ERROR;
}

static inline bool
io_buffer_pool_unmap_page(struct io_buffer_pool *pool, struct device *dev,
			  dma_addr_t dma_addr, size_t size,
			  enum dma_data_direction dir, unsigned long attrs)
{
	return false;
}

static inline int
io_buffer_pool_map_sg(struct io_buffer_pool *pool, struct device *dev,
		      struct scatterlist *sgl, int nents, int prot,
		      enum dma_data_direction dir, unsigned long attrs)
{
	return 0;
}

static inline bool
io_buffer_pool_unmap_sg(struct io_buffer_pool *pool, struct device *dev,
			struct scatterlist *sgl, int nents,
			enum dma_data_direction dir, unsigned long attrs)
{
	return false;
}

static inline bool
io_buffer_pool_sync_single(struct io_buffer_pool *pool, struct device *dev,
			   dma_addr_t dma_addr, size_t size,
			   enum dma_data_direction dir, bool for_cpu)
{
	return false;
}

static inline bool
io_buffer_pool_sync_sg(struct io_buffer_pool *pool, struct device *dev,
		       struct scatterlist *sgl, int nents,
		       enum dma_data_direction dir, bool for_cpu)
{
	return false;
}

#endif /* CONFIG_IOMMU_IO_BUFFER */
#endif /* __IO_BUFFER_POOL_H */
