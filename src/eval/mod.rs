//! Evaluation: full-ranking metrics (HR, NDCG, MRR) and baselines.
