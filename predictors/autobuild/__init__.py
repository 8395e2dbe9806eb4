"""AutoBuild (Building Optimal Neural Architectures using Interpretable Knowledge): a GATv2 predictor whose
hop-level embedding norms rank architectures, whose FE-MLP scores every node-feature value, and whose
node embeddings score the k-hop subgraphs (modules) networks are built from."""
