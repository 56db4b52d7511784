"""What a run and a sweep cost before they run: FLOPs and images, a measured probe, the reference GPU's model, the estimate."""
