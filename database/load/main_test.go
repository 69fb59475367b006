package load

import (
	"os"
	"testing"

	"github.com/pagarme/teleport/database/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }
