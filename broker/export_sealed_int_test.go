package broker

// ReadSealedInt and WriteSealedInt let tests of package broker_test reach
// the sealed state files.
var (
	ReadSealedInt  = readSealedInt
	WriteSealedInt = writeSealedInt
)
