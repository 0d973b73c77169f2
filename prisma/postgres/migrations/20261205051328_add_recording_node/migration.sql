-- AlterTable
ALTER TABLE "Recording" ADD COLUMN     "nodeName" TEXT;

-- CreateIndex
CREATE INDEX "Recording_nodeName_startedAt_idx" ON "Recording"("nodeName", "startedAt");
