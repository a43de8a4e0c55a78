// SPDX-License-Identifier: GPL-2.0
/*
 * gadget.c - the example gadget driver: a table of counters
 */
#include <linux/module.h>
#include <linux/slab.h>

struct gadget {
	unsigned int nr;
	u64 *counters;
};

int gadget_init(struct gadget *g, unsigned int nr)
{
	g->counters = kmalloc(nr * sizeof(*g->counters), GFP_KERNEL);
	if (!g->counters)
		return -ENOMEM;
	g->nr = nr;
	return 0;
}
EXPORT_SYMBOL_GPL(gadget_init);

void gadget_exit(struct gadget *g)
{
	kfree(g->counters);
	g->counters = NULL;
	g->nr = 0;
}
EXPORT_SYMBOL_GPL(gadget_exit);

MODULE_LICENSE("GPL");
