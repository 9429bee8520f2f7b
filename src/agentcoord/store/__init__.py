"""Storage: the interface the domain logic uses (:mod:`.base`) and its backends."""
