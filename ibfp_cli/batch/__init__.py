"""A folder of videos annotated from one seeds file: planned in `runner`, each video a job
(`jobs`) run here, in local worker processes (`pool`) or on a Ray cluster (`ray_runner`),
recorded in batch.csv (`summary`), split into shards for job arrays (`shards`)."""
