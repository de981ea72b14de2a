package unmapped
