"""The HTTP collector: a process role of its own (``upsell-stream collector``) that takes event
batches from storefront pages and servers over HTTP and produces them, keyed by shop, onto the
same topics the workers count from. Contract: docs/contract.md, section 6."""
