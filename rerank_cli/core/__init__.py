"""The data and the steps of a ranking: documents, the plan (split, dedup), folding, ranking,
long-document windows, budgets."""
