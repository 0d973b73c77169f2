-- CreateTable
CREATE TABLE "PlayedItem" (
    "id" TEXT NOT NULL,
    "virtualLiveId" TEXT NOT NULL,
    "vodResourceId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "endedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "PlayedItem_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "PlayedItem_virtualLiveId_startedAt_idx" ON "PlayedItem"("virtualLiveId", "startedAt");

-- CreateIndex
CREATE INDEX "PlayedItem_endedAt_idx" ON "PlayedItem"("endedAt");

-- AddForeignKey
ALTER TABLE "PlayedItem" ADD CONSTRAINT "PlayedItem_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive"("id") ON DELETE CASCADE ON UPDATE CASCADE;
