-- AlterTable
ALTER TABLE "VirtualLive" ADD COLUMN     "activeSource" TEXT NOT NULL DEFAULT 'PRIMARY',
ADD COLUMN     "backupUrl" TEXT,
ADD COLUMN     "failoverAfterFailures" INTEGER NOT NULL DEFAULT 3,
ADD COLUMN     "failoverAfterMs" INTEGER NOT NULL DEFAULT 10000,
ADD COLUMN     "slateVodResourceId" TEXT;

-- CreateIndex
CREATE INDEX "VirtualLive_slateVodResourceId_idx" ON "VirtualLive"("slateVodResourceId");

-- AddForeignKey
ALTER TABLE "VirtualLive" ADD CONSTRAINT "VirtualLive_slateVodResourceId_fkey" FOREIGN KEY ("slateVodResourceId") REFERENCES "VodResource"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
