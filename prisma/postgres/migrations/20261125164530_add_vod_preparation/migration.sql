-- AlterTable
ALTER TABLE "VodResource" ADD COLUMN     "prepareError" TEXT,
ADD COLUMN     "prepareProgress" DOUBLE PRECISION NOT NULL DEFAULT 1,
ADD COLUMN     "preparedPath" TEXT,
ADD COLUMN     "state" TEXT NOT NULL DEFAULT 'READY',
ADD COLUMN     "transcodeProfile" TEXT;
