"""Where images come from and how they are batched: the data sources (``registry``, ``sources``, ``folder``,
``index``, ``shards``, ``synthetic``), the ``Images`` protocol (``images``), label subsets (``subsets``) and
the loaders (``loaders``)."""
