package sim

import (
	"os"
	"time"
)

func allowed() { _, _ = os.Getwd(); _ = time.Now() }
